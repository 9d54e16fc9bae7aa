//! Gateway rules.

use super::*;

// ---- Gateway ----

pub(super) fn gw_servers(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(gw) = o.gateway() else { return };
    if gw.spec.servers.is_empty() {
        ctx.at(
            code,
            id,
            "spec",
            "a Gateway needs at least one server; Istio rejects one with none",
        );
        return;
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in gw.spec.servers.iter().enumerate() {
        let p = format!("spec.servers[{i}]");
        if s.hosts.is_empty() {
            ctx.at(
                code,
                id,
                &p,
                format!("server {i} has no hosts; Istio rejects it (use \"*\" for any host)"),
            );
        }
        let Some(port) = &s.port else {
            ctx.at(
                code,
                id,
                &p,
                format!("server {i} has no port; Istio rejects it"),
            );
            continue;
        };
        if !valid_port(port.number) && !s.bind.starts_with("unix://") {
            ctx.at(
                code,
                id,
                &format!("{p}.port.number"),
                format!("port {} is outside 1..65535; Istio rejects it", port.number),
            );
        }
        if port.name.is_empty() {
            ctx.at(
                code,
                id,
                &format!("{p}.port"),
                format!("server {i}'s port has no name; Istio rejects it"),
            );
        } else if let Some(first) = names.insert(&port.name, i) {
            ctx.at(
                code,
                id,
                &format!("{p}.port.name"),
                format!("port name {} is already used by server {first}; Istio requires unique port names across servers", port.name),
            );
        }
        let proto = Protocol::parse(&port.protocol);
        if proto == Protocol::Unsupported {
            ctx.at(
                code,
                id,
                &format!("{p}.port.protocol"),
                format!("protocol {:?} is not one a gateway serves (HTTP, HTTPS, HTTP2, GRPC, TLS, TCP, ...); Istio rejects it", port.protocol),
            );
        }
        match (&s.tls, proto.is_tls()) {
            (None, true) => {
                ctx.at(
                    code,
                    id,
                    &format!("{p}.port.protocol"),
                    format!(
                        "a {} server needs tls settings; Istio rejects it without them",
                        port.protocol
                    ),
                );
            }
            (Some(tls), false) if proto.is_http() => {
                let passthrough = matches!(
                    tls.effective_mode(),
                    ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
                );
                if !passthrough
                    || !tls.ca_certificates.is_empty()
                    || !tls.private_key.is_empty()
                    || !tls.server_certificate.is_empty()
                {
                    ctx.at(
                        code,
                        id,
                        &format!("{p}.tls"),
                        format!("a plain {} server can only carry tls.httpsRedirect; Istio rejects certificates or a TLS mode here (use protocol HTTPS)", port.protocol),
                    );
                }
            }
            (Some(_), false) if proto != Protocol::Unsupported => {
                ctx.at(code, id, &format!("{p}.tls"), format!("a {} server cannot have tls settings (only HTTPS and TLS servers can); Istio rejects it", port.protocol));
            }
            _ => {}
        }
    }
}

pub(super) fn gw_tls(ctx: &mut Ctx, id: ObjId, o: &Object, code: &'static Code) {
    let Some(gw) = o.gateway() else { return };
    for (i, s) in gw.spec.servers.iter().enumerate() {
        let Some(tls) = &s.tls else { continue };
        let p = format!("spec.servers[{i}].tls");
        server_tls_errors(ctx, id, code, &p, tls);
    }
}

pub(super) fn server_tls_errors(
    ctx: &mut Ctx,
    id: ObjId,
    code: &'static Code,
    p: &str,
    tls: &ServerTlsSettings,
) {
    let mode = tls.effective_mode();
    if mode == ServerTlsMode::IstioMutual {
        let set: Vec<&str> = [
            (!tls.server_certificate.is_empty(), "serverCertificate"),
            (!tls.private_key.is_empty(), "privateKey"),
            (!tls.ca_certificates.is_empty(), "caCertificates"),
            (!tls.credential_name.is_empty(), "credentialName"),
            (!tls.credential_names.is_empty(), "credentialNames"),
            (!tls.tls_certificates.is_empty(), "tlsCertificates"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        if !set.is_empty() {
            ctx.at(
                code,
                id,
                &format!("{p}.mode"),
                format!(
                    "ISTIO_MUTUAL uses the mesh certificates and cannot have {}; Istio rejects it",
                    set.join(", ")
                ),
            );
        }
        return;
    }
    let sources = [
        !tls.server_certificate.is_empty() && !tls.private_key.is_empty(),
        !tls.credential_name.is_empty(),
        !tls.credential_names.is_empty(),
        !tls.tls_certificates.is_empty(),
    ];
    if sources.iter().filter(|b| **b).count() > 1 {
        ctx.at(
            code,
            id,
            p,
            "more than one certificate source (credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates); Istio rejects it; keep one",
        );
    }
    let terminating = matches!(
        mode,
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    if !terminating || !tls.credential_name.is_empty() || !tls.credential_names.is_empty() {
        return;
    }
    let mode_name = match mode {
        ServerTlsMode::Simple => "SIMPLE",
        ServerTlsMode::Mutual => "MUTUAL",
        _ => "OPTIONAL_MUTUAL",
    };
    let certs: Vec<(String, &str, &str)> = if tls.tls_certificates.is_empty() {
        vec![(
            p.to_string(),
            tls.server_certificate.as_str(),
            tls.private_key.as_str(),
        )]
    } else {
        tls.tls_certificates
            .iter()
            .enumerate()
            .map(|(j, c)| {
                (
                    format!("{p}.tlsCertificates[{j}]"),
                    c.server_certificate.as_str(),
                    c.private_key.as_str(),
                )
            })
            .collect()
    };
    for (cp, cert, key) in certs {
        if cert.is_empty() || key.is_empty() {
            let missing = match (cert.is_empty(), key.is_empty()) {
                (true, true) => "no credentialName, serverCertificate or privateKey",
                (true, false) => "no credentialName or serverCertificate",
                _ => "no credentialName or privateKey",
            };
            ctx.at(
                code,
                id,
                &cp,
                format!("TLS mode {mode_name} has {missing}: the gateway has nothing to present; Istio rejects it; set credentialName to a TLS Secret"),
            );
        }
    }
    if mode != ServerTlsMode::Simple && tls.ca_certificates.is_empty() {
        ctx.at(
            code,
            id,
            &format!("{p}.mode"),
            format!("TLS mode {mode_name} without credentialName needs caCertificates to verify clients; Istio rejects it"),
        );
    }
}
