//! Why a token is refused, worded as Envoy's `jwt_authn` filter words it: the text is the body
//! of the 401 (or 403) a client of an Istio mesh already gets and may already match on, so it is
//! kept word for word (the status strings of Envoy's JWT library).

use http::StatusCode;

/// The one thing wrong with a token. Always the client's fault; retrying the same request is
/// pointless until the client presents another token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not three non-empty sections separated by two dots.
    BadFormat,
    HeaderBadBase64,
    HeaderBadJson,
    /// The header has no `alg`, or it is not a string.
    HeaderBadAlg,
    /// An `alg` no JWS implementation here knows (`none`, say).
    HeaderNotImplementedAlg,
    HeaderBadKid,
    PayloadBadBase64,
    PayloadBadJson,
    IssNotString,
    SubNotString,
    IatNotInteger,
    IatOutOfRange,
    NbfNotInteger,
    NbfOutOfRange,
    ExpNotInteger,
    ExpOutOfRange,
    JtiNotString,
    AudNotString,
    SignatureBadBase64,
    /// No provider that looks for tokens where this one was found trusts its `iss`.
    UnknownIssuer,
    Expired,
    NotYetValid,
    /// The provider lists audiences and the token names none of them (Envoy answers 403).
    AudienceNotAllowed,
    /// No key of the provider's JWKS has the token's `kid` and `alg` (also when the JWKS is
    /// empty or unusable: the provider fails closed).
    NoMatchingKey,
    /// Some keys matched, none verified the signature.
    VerificationFails,
    Ed25519SignatureWrongLength,
    /// No token, and a rule says one must be there (`presence: REQUIRED`).
    Missing,
}

impl Reason {
    /// The response body Envoy sends for this reason.
    pub fn body(self) -> &'static str {
        match self {
            Reason::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            Reason::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            Reason::HeaderBadJson => "Jwt header is an invalid JSON",
            Reason::HeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            Reason::HeaderNotImplementedAlg => "Jwt header [alg] is not supported",
            Reason::HeaderBadKid => "Jwt header [kid] field is not a string",
            Reason::PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            Reason::PayloadBadJson => "Jwt payload is an invalid JSON",
            Reason::IssNotString => "Jwt payload [iss] field is not a string",
            Reason::SubNotString => "Jwt payload [sub] field is not a string",
            Reason::IatNotInteger => "Jwt payload [iat] field is not an integer",
            Reason::IatOutOfRange => "Jwt payload [iat] field is not a positive 64 bit integer",
            Reason::NbfNotInteger => "Jwt payload [nbf] field is not an integer",
            Reason::NbfOutOfRange => "Jwt payload [nbf] field is not a positive 64 bit integer",
            Reason::ExpNotInteger => "Jwt payload [exp] field is not an integer",
            Reason::ExpOutOfRange => "Jwt payload [exp] field is not a positive 64 bit integer",
            Reason::JtiNotString => "Jwt payload [jti] field is not a string",
            Reason::AudNotString => "Jwt payload [aud] field is not a string or string list",
            Reason::SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            Reason::UnknownIssuer => "Jwt issuer is not configured",
            Reason::Expired => "Jwt is expired",
            Reason::NotYetValid => "Jwt not yet valid",
            Reason::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            Reason::NoMatchingKey => "Jwks doesn't have key to match kid or alg from Jwt",
            Reason::VerificationFails => "Jwt verification fails",
            Reason::Ed25519SignatureWrongLength => "Jwt ED25519 signature is wrong length",
            Reason::Missing => "Jwt is missing",
        }
    }

    /// Envoy's status: 403 for a token meant for someone else, 401 for everything else.
    pub fn status(self) -> StatusCode {
        match self {
            Reason::AudienceNotAllowed => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.body())
    }
}

/// A refused request: the reason (its `Display` is the response body) and, once the token's
/// issuer is known, which RequestAuthentication refused it (for the proxy's log).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    reason: Reason,
    provider: Option<String>,
}

impl Rejection {
    pub(super) fn new(reason: Reason, provider: Option<&str>) -> Rejection {
        Rejection {
            reason,
            provider: provider.map(str::to_string),
        }
    }

    /// The response body, as Envoy words it.
    pub fn body(&self) -> &str {
        self.reason.body()
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The response status: 401, or 403 for [`Reason::AudienceNotAllowed`].
    pub fn status(&self) -> StatusCode {
        self.reason.status()
    }

    /// `namespace/name issuer X` of the provider that refused the token; `None` when the token
    /// was refused before an issuer was matched (unparsable, unknown issuer).
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }
}
