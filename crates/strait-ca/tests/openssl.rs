//! Interoperability: OpenSSL, an independent X.509 implementation, accepts what we issue,
//! and we accept plug-in CAs made with OpenSSL the way Istio's docs make them.

mod common;

use std::time::Duration;

use common::{assert_rejected, assert_verifies, id, init, issue, openssl, path_str, write};
use strait_ca::Authority;

/// Every workload certificate issued from every cluster's `cacerts` verifies against that
/// cluster's `root-cert.pem` with `cert-chain.pem` as the untrusted intermediates, and
/// against every other cluster's root too: that is what makes cross-cluster mTLS work.
#[test]
fn openssl_verifies_workload_certificates_across_clusters() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path();
    init(out, &["cluster1", "cluster2"]);
    for cluster in ["cluster1", "cluster2"] {
        let dir = out.join(cluster);
        let ca = Authority::load(&dir).expect("load cacerts");
        let chain = issue(&ca, &id("sample", "sleep"), Duration::from_secs(3600));
        let leaf = write(&tmp.path().join(format!("{cluster}-leaf.pem")), &chain[0]);
        assert_verifies(
            &dir.join("root-cert.pem"),
            Some(&dir.join("cert-chain.pem")),
            &leaf,
        );
        // The chain as a proxy receives it is enough on its own.
        let untrusted = write(
            &tmp.path().join(format!("{cluster}-chain.pem")),
            &chain[1..].concat(),
        );
        for other in ["cluster1", "cluster2"] {
            assert_verifies(
                &out.join(other).join("root-cert.pem"),
                Some(&untrusted),
                &leaf,
            );
        }
        // Without the intermediate there is no path to the root.
        assert_rejected(&dir.join("root-cert.pem"), None, &leaf);
    }
}

#[test]
fn openssl_verifies_each_intermediate_against_the_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    init(tmp.path(), &["east", "west"]);
    for cluster in ["east", "west"] {
        let dir = tmp.path().join(cluster);
        assert_verifies(
            &tmp.path().join("root-cert.pem"),
            None,
            &dir.join("ca-cert.pem"),
        );
        let (ok, text) = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            path_str(&dir.join("ca-cert.pem")),
        ]);
        assert!(ok, "{text}");
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
        assert!(text.contains(&format!("L = {cluster}")), "{text}");
        assert!(text.contains("CN = Intermediate CA"), "{text}");
        assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    }
    let (ok, text) = openssl(&[
        "x509",
        "-noout",
        "-subject",
        "-in",
        path_str(&tmp.path().join("root-cert.pem")),
    ]);
    assert!(ok && text.contains("O = strait, CN = Root CA"), "{text}");
}

/// A trust bundle with two roots (a root rotation in progress) verifies chains that end at
/// either root.
#[test]
fn bundle_of_two_roots_verifies_both_chains() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    init(&old, &["a"]);
    init(&new, &["b"]);
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(old.join("root-cert.pem")).expect("read"),
        std::fs::read_to_string(new.join("root-cert.pem")).expect("read")
    );
    // Cluster b trusts both roots; its own chain ends at the second one.
    let b = new.join("b");
    write(&b.join("root-cert.pem"), &bundle);
    let ca_b = Authority::load(&b).expect("chain ends at the bundle's second root");
    assert_eq!(
        strait_ca::parse_chain(ca_b.roots_pem()).expect("pem").len(),
        2
    );
    let ca_a = Authority::load(&old.join("a")).expect("load a");

    let bundle_file = write(&tmp.path().join("bundle.pem"), &bundle);
    for (name, ca) in [("a", &ca_a), ("b", &ca_b)] {
        let chain = issue(ca, &id("default", name), Duration::ZERO);
        let leaf = write(&tmp.path().join(format!("{name}-leaf.pem")), &chain[0]);
        let inter = write(&tmp.path().join(format!("{name}-inter.pem")), &chain[1]);
        assert_verifies(&bundle_file, Some(&inter), &leaf);
    }
    // The last element is the root the chain really ends at, not just the first in the bundle.
    let chain_b = issue(&ca_b, &id("default", "b"), Duration::ZERO);
    assert_eq!(
        chain_b.last(),
        Some(&std::fs::read_to_string(new.join("root-cert.pem")).expect("read"))
    );
}

#[test]
fn self_signed_authority_chain_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = Authority::self_signed("cluster.local").expect("self-signed");
    let chain = issue(&ca, &id("ns", "sa"), Duration::ZERO);
    assert_eq!(chain.len(), 2, "leaf then root");
    assert_eq!(chain[1], ca.roots_pem());
    let roots = write(&tmp.path().join("roots.pem"), ca.roots_pem());
    let leaf = write(&tmp.path().join("leaf.pem"), &chain[0]);
    assert_verifies(&roots, None, &leaf);
}

/// A plug-in CA made with OpenSSL as Istio's sample Makefile does it (RSA root, intermediate
/// with pathlen 0, cert-chain = intermediate + root), with its key in each of the
/// encodings OpenSSL writes: PKCS#8, PKCS#1 (`-traditional`) and SEC1 (`ecparam`).
#[test]
fn loads_plug_in_cas_made_by_openssl() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let p = |name: &str| t.join(name).to_str().expect("utf-8").to_string();
    run(&["genrsa", "-out", &p("root-key.pem"), "2048"]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &p("root-key.pem"),
        "-sha256",
        "-days",
        "3650",
        "-subj",
        "/O=Istio/CN=Root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        &p("root-cert.pem"),
    ]);
    write(
        &t.join("ext.cnf"),
        "[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\n\
         keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,keyCertSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
         subjectAltName=DNS:istiod.istio-system.svc\n",
    );
    let key_commands: [(&str, Vec<&str>); 3] = [
        ("pkcs8-rsa", vec!["genrsa", "2048"]),
        ("pkcs1-rsa", vec!["genrsa", "-traditional", "2048"]),
        (
            "sec1-p256",
            vec!["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
        ),
    ];
    for (n, (name, keygen)) in key_commands.into_iter().enumerate() {
        let dir = t.join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        let d = |f: &str| dir.join(f).to_str().expect("utf-8").to_string();
        let key = d("ca-key.pem");
        // `-out` right after the command: genrsa wants the key size last.
        let mut args = vec![keygen[0], "-out", &key];
        args.extend(&keygen[1..]);
        run(&args);
        let key_text = std::fs::read_to_string(&key).expect("key");
        let expected = match name {
            "pkcs8-rsa" => "BEGIN PRIVATE KEY",
            "pkcs1-rsa" => "BEGIN RSA PRIVATE KEY",
            _ => "BEGIN EC PRIVATE KEY",
        };
        assert!(key_text.contains(expected), "{name}: {key_text}");
        run(&[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/O=Istio/CN=Intermediate CA/L={name}"),
            "-out",
            &d("ca.csr"),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &d("ca.csr"),
            "-CA",
            &p("root-cert.pem"),
            "-CAkey",
            &p("root-key.pem"),
            "-set_serial",
            &format!("{}", 1000 + n),
            "-days",
            "730",
            "-sha256",
            "-extfile",
            &p("ext.cnf"),
            "-extensions",
            "v3",
            "-out",
            &d("ca-cert.pem"),
        ]);
        std::fs::copy(t.join("root-cert.pem"), dir.join("root-cert.pem")).expect("copy");
        let chain = format!(
            "{}{}",
            std::fs::read_to_string(dir.join("ca-cert.pem")).expect("read"),
            std::fs::read_to_string(t.join("root-cert.pem")).expect("read")
        );
        write(&dir.join("cert-chain.pem"), &chain);

        let ca = Authority::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let issued = issue(&ca, &id("sample", "helloworld"), Duration::ZERO);
        assert_eq!(issued.len(), 3, "{name}: leaf, intermediate, root");
        let leaf = write(&dir.join("leaf.pem"), &issued[0]);
        assert_verifies(
            &dir.join("root-cert.pem"),
            Some(&dir.join("cert-chain.pem")),
            &leaf,
        );
    }
}

fn run(args: &[&str]) {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {}: {text}", args.join(" "));
}

/// rcgen cannot reproduce a subject with a repeated attribute type; loading such a CA must
/// fail up front, not issue certificates whose issuer name matches nothing.
#[test]
fn refuses_a_ca_whose_subject_cannot_be_copied_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = |f: &str| tmp.path().join(f).to_str().expect("utf-8").to_string();
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &d("ca-key.pem"),
    ]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &d("ca-key.pem"),
        "-days",
        "30",
        "-subj",
        "/O=Example/OU=Mesh/OU=Security/CN=Root CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        &d("ca-cert.pem"),
    ]);
    std::fs::copy(d("ca-cert.pem"), d("root-cert.pem")).expect("copy");
    let e = Authority::load(tmp.path()).expect_err("repeated OU");
    assert!(
        matches!(
            &e,
            strait_ca::Error::CaFile { problem: strait_ca::CaFileProblem::SubjectForm, path }
                if path.ends_with("ca-cert.pem")
        ),
        "{e}"
    );
}
