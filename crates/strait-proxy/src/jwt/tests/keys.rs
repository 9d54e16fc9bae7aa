//! Keys, key sets and token signing for the tests: EC and Ed25519 keys are made fresh with
//! rcgen (ring), the RSA key is fixed because ring cannot generate one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use strait_config::JwtProvider;

pub const ISSUER: &str = "https://issuer.example.com";
/// The tests' clock: 2027-01-15.
pub const NOW: u64 = 1_800_000_000;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// A private key able to sign tokens, and its public JWK.
pub struct Signer {
    key: EncodingKey,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub jwk: Value,
}

impl Signer {
    pub fn p256(kid: &str) -> Signer {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p256");
        let raw = kp.public_key_raw();
        assert_eq!(raw.len(), 65, "uncompressed point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
        });
        Signer {
            key: EncodingKey::from_ec_der(&kp.serialize_der()),
            alg: Algorithm::ES256,
            kid: Some(kid.to_string()),
            jwk,
        }
    }

    pub fn ed25519(kid: &str) -> Signer {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519");
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(kp.public_key_raw()),
        });
        Signer {
            key: EncodingKey::from_ed_der(&kp.serialize_der()),
            alg: Algorithm::EdDSA,
            kid: Some(kid.to_string()),
            jwk,
        }
    }

    /// The fixed RSA key, for `RS*` or `PS*`; the JWK names no `alg`.
    pub fn rsa(kid: &str, alg: Algorithm) -> Signer {
        let der = STANDARD.decode(RSA_DER).expect("rsa der");
        Signer {
            key: EncodingKey::from_rsa_der(&der),
            alg,
            kid: Some(kid.to_string()),
            jwk: json!({"kty": "RSA", "kid": kid, "n": RSA_N, "e": "AQAB"}),
        }
    }

    pub fn without_kid(mut self) -> Signer {
        self.kid = None;
        self
    }

    /// A token for these claims, signed.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }

    /// A token with a header of our own making, signed.
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let msg = format!("{}.{}", b64(header), b64(claims));
        let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &self.key, self.alg).expect("sign");
        format!("{msg}.{sig}")
    }
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A JWKS document of these keys.
pub fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

/// A provider for [`ISSUER`] at the default locations.
pub fn provider(jwks: String) -> JwtProvider {
    JwtProvider {
        policy: "ns/ra".into(),
        issuer: ISSUER.into(),
        jwks,
        jwks_source: "inline".into(),
        ..JwtProvider::default()
    }
}

/// Claims valid at [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": ["api.example.com", "other"],
        "azp": "web-client",
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "scope": "read  write",
        "permission": "a:b c:d",
        "groups": ["admins", "devs", 7],
        "nested": {"key": "value", "deeper": {"n": 42, "flag": true}},
        "roles": "editor viewer",
    })
}

/// A 2048-bit RSA key (PKCS#1 DER, base64), made once with `cryptography` for these tests only.
pub const RSA_DER: &str = concat!(
    "MIIEowIBAAKCAQEA38fOokTTXKLfi9XTIev45/zsmAXkb7+/6VlCidgQaRvAciW8MsbDWnamHH+hQmr1oKr3BW/f",
    "SyI9qHs+d+6ZRZK+mQaZCj9B3AFL6qQQVrBr8ShNxu8APdluGdtWlqVJdfUjpEohiG6IXqOZAdTViOkq7Z85mzB6",
    "ZpRI95XFjjFsAXZHFHnLUn2FS0JGIXOqO3t4EZSRCOMoTiy88XlOff5KFV23krY+VHq8ZOUYUphtSYTTJwSLCm3i",
    "xOX11eiR17IDje+8czSvwA39+WbZ9CncDnGVSbteA7Qlx34JSKg5JbaTC/AR7lCXPOh7MUMlYr2bbzEESgY/mL3O",
    "OKemqQIDAQABAoIBAAv64eSNA7W3YHlXeqSbwekFgNMIqbiTzt3asfW4M/S0kCJsQ72CJ44twOnQqVzpZfnyfSP0",
    "38Lhc+STqH36L4lqeDqwADxss4VoKlzG6LsDWdwAuN04CU7GV58Zv3J0KdEfTQesEkyAAlvyrSvMbZwVQ3+SIR7e",
    "Qwc/1AIxKfDZOdrqQHpGIMB7EB9tcTq7mINsG3YaCqgEZD5ol9zKUBkMQops2mFog41etzDokPu2qJW3tacMzPbr",
    "i24IP8RWA5OB0Jz69dU+dgWP/WJnm9Gm4WNf8ShBz9Mywu/Ev1EnlMu+u843s3TPHPP7CQ2Dl5vMJDpzSzX0Kqd4",
    "envXddMCgYEA71mfIz4aau1pr4YoGSUhNEP+MVV/Se6oOpfh6dmz3BqwjFm1dNSe0AiYJt8rqr0poRHp+vFksxBR",
    "iTEroAwCffkHiTKjRDmFIq8hBhpYBIWoTfCFewV1Ql+3npuF81a9jmZl9kQhuR0qEy9MrU+FiedXf0Q/9LiypKNl",
    "G/ZGuxsCgYEA71jrlAUsHcTubr49HWUKY6arzOc9+UfB3AhRTHrPMibcrKVDumxzXtYQADBooGJGBk6RS6ifJkDG",
    "/bUraPjw619P9I11DVorpW9Xpd2ZYRGkigx1mqKe5rQIVq8TL6wrPsVVGJtVP2yZRY0d75/zl84o/9mxWZwZFDeg",
    "R2oKHYsCgYA/EZmKWtHxPQ/tLWehgJQoRoZTj5jT7WwszFq+GRx4shu1T+otl90lKi6Vh5blDaVLiQHjmvoS6Qjj",
    "Iq7BJIj/ksA2mb5FuvZm9ki4Z/arcmCv8OHrUbvdOoWS6J46Sa/3NupFIxzTv2iX143X2S1x8iCvK1fC72w7T8bT",
    "wGhQ4wKBgQDew1/e0EGTI2rW33B6H0RgIwvbFY30qPihFYy1JcgZ4VmZxecXZ0Cpj4os4uE+BLkvvYg1ZqdZLwkF",
    "sMzKUofISVldPxsmZjohK1PkKC9MzOLbKWV7msdR6VWpeCDfSdql/XuJ/2iEM0skFIc8Mx7AtzwphC8wO7yLuIoQ",
    "bX0kqQKBgHCKjbgToDyelnn1YN5ZJREdc9Hx/Ub6nqxW4H4lDEg3KNGaH3efkacr2Nff3oh9awGXhdYbvKACknQP",
    "eVdkTTgBq6KRaiAfhmrq09hrGGIUK9ZGOL4KJhP6NoqkbvVtI0ytQSFbyxRlsg/JENP7N9tuOpPXlRaXmZ8bspiy",
    "f0kK",
);
/// Its modulus, base64url; the exponent is 65537.
pub const RSA_N: &str = concat!(
    "38fOokTTXKLfi9XTIev45_zsmAXkb7-_6VlCidgQaRvAciW8MsbDWnamHH-hQmr1oKr3BW_fSyI9qHs-d-6ZRZK-",
    "mQaZCj9B3AFL6qQQVrBr8ShNxu8APdluGdtWlqVJdfUjpEohiG6IXqOZAdTViOkq7Z85mzB6ZpRI95XFjjFsAXZH",
    "FHnLUn2FS0JGIXOqO3t4EZSRCOMoTiy88XlOff5KFV23krY-VHq8ZOUYUphtSYTTJwSLCm3ixOX11eiR17IDje-8",
    "czSvwA39-WbZ9CncDnGVSbteA7Qlx34JSKg5JbaTC_AR7lCXPOh7MUMlYr2bbzEESgY_mL3OOKemqQ",
);
