//! Which built-in app a pod runs, from its image name or an annotation.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Pod annotation that picks the app regardless of the image, e.g. `strait.dev/app: echo`.
pub const APP_ANNOTATION: &str = "strait.dev/app";
/// Pod annotation listing URLs (comma-separated) the echo app calls on every request, e.g.
/// `strait.dev/calls: http://profile.shop/,http://accounts.shop/`: a front end and its backends.
pub const CALLS_ANNOTATION: &str = "strait.dev/calls";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppKind {
    Helloworld,
    Echo,
    Sleep,
}

/// The [`APP_ANNOTATION`] names no built-in app.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown app {value:?}: expected one of helloworld, echo, sleep")]
pub struct UnknownApp {
    pub value: String,
}

impl AppKind {
    pub const ALL: [AppKind; 3] = [AppKind::Helloworld, AppKind::Echo, AppKind::Sleep];

    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Helloworld => "helloworld",
            AppKind::Echo => "echo",
            AppKind::Sleep => "sleep",
        }
    }

    /// The app for a container, the way manifests are written: the [`APP_ANNOTATION`] if
    /// present, else by image name (`istio/examples-helloworld-v1` → helloworld,
    /// `curlimages/curl` → sleep, `hashicorp/http-echo` or `kennethreitz/httpbin` → echo).
    /// `Ok(None)`: not a built-in app; the pod needs a local command.
    ///
    /// Only the image's last path segment is matched, so a registry host such as
    /// `echo.example.com/team/api` picks nothing. The version helloworld prints comes
    /// from [`image_version`], as in Istio's sample where each version is its own image.
    pub fn from_image(
        image: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Option<AppKind>, UnknownApp> {
        if let Some(value) = annotations.get(APP_ANNOTATION) {
            return value.parse().map(Some);
        }
        let name = image_name(image);
        let kind = if name.contains("helloworld") {
            Some(AppKind::Helloworld)
        } else if ["echo", "httpbin"].iter().any(|n| name.contains(n)) {
            Some(AppKind::Echo)
        } else if ["curl", "sleep", "netshoot", "busybox"]
            .iter()
            .any(|n| name.contains(n))
        {
            Some(AppKind::Sleep)
        } else {
            None
        };
        Ok(kind)
    }
}

/// The version in a helloworld image name: `istio/examples-helloworld-v2:1.0` → `v2`.
pub fn image_version(image: &str) -> Option<&str> {
    let name = image_name(image);
    let rest = &name[name.find("helloworld-v")? + "helloworld-".len()..];
    let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then(|| &rest[..1 + digits])
}

/// The last path segment of an image reference, without tag or digest, lowercased by
/// convention already (OCI names are lowercase).
fn image_name(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split(':').next().unwrap_or(last)
}

impl FromStr for AppKind {
    type Err = UnknownApp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownApp {
                value: s.to_owned(),
            })
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(image: &str) -> Option<AppKind> {
        AppKind::from_image(image, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn images_from_istio_samples_and_common_manifests() {
        use AppKind::*;
        let cases = [
            (
                "docker.io/istio/examples-helloworld-v1:1.0",
                Some(Helloworld),
            ),
            ("istio/examples-helloworld-v2", Some(Helloworld)),
            ("curlimages/curl", Some(Sleep)),
            ("curlimages/curl:8.16.0", Some(Sleep)),
            ("governmentpaas/curl-ssl", Some(Sleep)),
            ("docker.io/istio/sleep:1.0", Some(Sleep)),
            ("nicolaka/netshoot", Some(Sleep)),
            ("hashicorp/http-echo:1.0", Some(Echo)),
            ("registry.k8s.io/echoserver:1.10", Some(Echo)),
            ("ealen/echo-server", Some(Echo)),
            ("kennethreitz/httpbin", Some(Echo)),
            ("mccutchen/go-httpbin:v2", Some(Echo)),
            ("nginx:1.27", None),
            ("echo.example.com/team/api:1", None),
            ("ghcr.io/acme/payments@sha256:0123abcd", None),
        ];
        for (image, want) in cases {
            assert_eq!(kind(image), want, "{image}");
        }
    }

    #[test]
    fn annotation_overrides_the_image() {
        let annotations = BTreeMap::from([(APP_ANNOTATION.to_owned(), "echo".to_owned())]);
        let got = AppKind::from_image("curlimages/curl", &annotations);
        assert_eq!(got, Ok(Some(AppKind::Echo)));
        let annotations = BTreeMap::from([(APP_ANNOTATION.to_owned(), "sleep".to_owned())]);
        let got = AppKind::from_image("nginx", &annotations);
        assert_eq!(got, Ok(Some(AppKind::Sleep)));
    }

    #[test]
    fn unknown_annotation_is_an_error_naming_the_choices() {
        let annotations = BTreeMap::from([(APP_ANNOTATION.to_owned(), "hello".to_owned())]);
        let err = AppKind::from_image("istio/examples-helloworld-v1", &annotations).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown app \"hello\": expected one of helloworld, echo, sleep"
        );
    }

    #[test]
    fn version_comes_from_the_helloworld_image_name() {
        assert_eq!(
            image_version("docker.io/istio/examples-helloworld-v2:1.0"),
            Some("v2")
        );
        assert_eq!(image_version("istio/examples-helloworld-v10"), Some("v10"));
        assert_eq!(image_version("istio/examples-helloworld"), None);
        assert_eq!(image_version("istio/examples-helloworld-vx"), None);
        assert_eq!(image_version("acme/helloworld:v2"), None);
    }
}
