//! Image references: ostree-rs-ext's `ostree-…:` grammar on top of containers/image transports.
//!
//! ```text
//! ostree-unverified-image:<transport>:<name>
//! ostree-unverified-registry:<registry name>          = ostree-unverified-image:registry:<name>
//! ostree-remote-image:<remote>:<transport>:<name>
//! ostree-remote-registry:<remote>:<registry name>     = ostree-remote-image:<remote>:registry:<name>
//! ostree-image-signed:<transport>:<name>
//! ```
//!
//! Transports: `registry:` (also written `docker://`), `oci:`, `oci-archive:`,
//! `docker-archive:`, `containers-storage:`, `dir:`. The first `:` ends the scheme, the next
//! ends the remote name (which therefore cannot contain `:`), and the transport name ends at
//! the following `:`. For `oci:` and `oci-archive:` the path ends at its first `:` and what
//! follows is the tag (or `@digest`) in the layout's index.
//!
//! [`ImageReference`]'s `Display` is the containers/image form (`docker://quay.io/os:1`,
//! `oci:/srv/img:latest`); that string, escaped, names the image's ref in the repository.

use std::fmt;
use std::str::FromStr;

/// How the image is reached (a containers/image transport).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `registry:` / `docker://`: a registry.
    Registry,
    /// `oci:`: an OCI layout directory.
    OciDir,
    /// `oci-archive:`: a tar archive of an OCI layout.
    OciArchive,
    /// `docker-archive:`: a `docker save` archive.
    DockerArchive,
    /// `containers-storage:`: local podman/buildah storage.
    ContainerStorage,
    /// `dir:`: skopeo's directory format.
    Dir,
}

impl Transport {
    /// The transport prefix in containers/image syntax, as skopeo takes it.
    pub fn prefix(self) -> &'static str {
        match self {
            Transport::Registry => "docker://",
            Transport::OciDir => "oci:",
            Transport::OciArchive => "oci-archive:",
            Transport::DockerArchive => "docker-archive:",
            Transport::ContainerStorage => "containers-storage:",
            Transport::Dir => "dir:",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "registry" | "docker" => Transport::Registry,
            "oci" => Transport::OciDir,
            "oci-archive" => Transport::OciArchive,
            "docker-archive" => Transport::DockerArchive,
            "containers-storage" => Transport::ContainerStorage,
            "dir" => Transport::Dir,
            _ => return None,
        })
    }
}

/// A transport plus the transport-specific name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// How the image is reached.
    pub transport: Transport,
    /// The transport's name for it (`quay.io/org/os:latest`, `/srv/os:latest`, …).
    pub name: String,
}

/// How signatures are checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignatureSource {
    /// `ostree-remote-image:<remote>:`: the ostree remote's configuration.
    OstreeRemote(String),
    /// `ostree-image-signed:`: containers-policy.json.
    ContainerPolicy,
    /// `ostree-unverified-image:`: containers-policy.json, allowing insecure defaults.
    ContainerPolicyAllowInsecure,
}

/// A full `ostree-…:` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OstreeImageReference {
    /// How signatures are checked (the scheme).
    pub sigverify: SignatureSource,
    /// The image.
    pub imgref: ImageReference,
}

/// Why a string is not an image reference; each message lists what is accepted. The first
/// field is always the whole reference as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// No known `ostree-…:` scheme prefix.
    #[error(
        "invalid image reference {0:?}: expected <scheme>:…, one of ostree-unverified-image:<transport>:<name>, \
         ostree-unverified-registry:<name>, ostree-remote-image:<remote>:<transport>:<name>, \
         ostree-remote-registry:<remote>:<name>, ostree-image-signed:<transport>:<name>"
    )]
    NoScheme(String),
    /// A scheme that is not one of the five (the second field).
    #[error(
        "invalid image reference {0:?}: unknown scheme {1:?}; expected ostree-unverified-image, \
         ostree-unverified-registry, ostree-remote-image, ostree-remote-registry or ostree-image-signed"
    )]
    UnknownScheme(String, String),
    /// A `…-remote-…` scheme (the second field) with an empty remote name.
    #[error("invalid image reference {0:?}: expected {1}:<remote>:… with a non-empty remote name")]
    NoRemote(String, &'static str),
    /// No `<transport>:` before the name.
    #[error(
        "invalid image reference {0:?}: expected <transport>:<name> where transport is one of \
         registry, docker://, oci, oci-archive, docker-archive, containers-storage, dir"
    )]
    NoTransport(String),
    /// A transport that is not supported (the second field).
    #[error(
        "invalid image reference {0:?}: unknown transport {1:?}; expected one of registry, \
         docker://, oci, oci-archive, docker-archive, containers-storage, dir"
    )]
    UnknownTransport(String, String),
    /// Nothing after the transport.
    #[error("invalid image reference {0:?}: empty image name after the transport")]
    EmptyName(String),
    /// `docker:` without the `//`.
    #[error("invalid image reference {0:?}: expected docker://<name>")]
    DockerSlashes(String),
}

impl FromStr for ImageReference {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (tname, rest) = s
            .split_once(':')
            .ok_or_else(|| ParseError::NoTransport(s.to_string()))?;
        let transport = Transport::from_name(tname)
            .ok_or_else(|| ParseError::UnknownTransport(s.to_string(), tname.to_string()))?;
        let name = if tname == "docker" {
            rest.strip_prefix("//")
                .ok_or_else(|| ParseError::DockerSlashes(s.to_string()))?
        } else {
            rest
        };
        if name.is_empty() {
            return Err(ParseError::EmptyName(s.to_string()));
        }
        Ok(ImageReference {
            transport,
            name: name.to_string(),
        })
    }
}

impl FromStr for OstreeImageReference {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| ParseError::NoScheme(s.to_string()))?;
        let remote = |scheme: &'static str| -> Result<(String, &str), ParseError> {
            match rest.split_once(':') {
                Some((r, tail)) if !r.is_empty() => Ok((r.to_string(), tail)),
                _ => Err(ParseError::NoRemote(s.to_string(), scheme)),
            }
        };
        let (sigverify, image) = match scheme {
            "ostree-unverified-image" => (
                SignatureSource::ContainerPolicyAllowInsecure,
                rest.to_string(),
            ),
            "ostree-image-signed" => (SignatureSource::ContainerPolicy, rest.to_string()),
            "ostree-unverified-registry" => (
                SignatureSource::ContainerPolicyAllowInsecure,
                format!("registry:{rest}"),
            ),
            "ostree-remote-image" => {
                let (r, tail) = remote("ostree-remote-image")?;
                (SignatureSource::OstreeRemote(r), tail.to_string())
            }
            "ostree-remote-registry" => {
                let (r, tail) = remote("ostree-remote-registry")?;
                (SignatureSource::OstreeRemote(r), format!("registry:{tail}"))
            }
            other => return Err(ParseError::UnknownScheme(s.to_string(), other.to_string())),
        };
        // Errors name the whole input, not the inner part.
        let imgref = image.parse::<ImageReference>().map_err(|e| match e {
            ParseError::NoTransport(_) => ParseError::NoTransport(s.to_string()),
            ParseError::UnknownTransport(_, t) => ParseError::UnknownTransport(s.to_string(), t),
            ParseError::EmptyName(_) => ParseError::EmptyName(s.to_string()),
            ParseError::DockerSlashes(_) => ParseError::DockerSlashes(s.to_string()),
            other => other,
        })?;
        Ok(OstreeImageReference { sigverify, imgref })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.transport.prefix(), self.name)
    }
}

impl fmt::Display for OstreeImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.imgref.transport {
            Transport::Registry => "registry",
            t => t.prefix().trim_end_matches(':'),
        };
        match &self.sigverify {
            SignatureSource::ContainerPolicyAllowInsecure
                if self.imgref.transport == Transport::Registry =>
            {
                write!(f, "ostree-unverified-registry:{}", self.imgref.name)
            }
            SignatureSource::ContainerPolicyAllowInsecure => {
                write!(f, "ostree-unverified-image:{t}:{}", self.imgref.name)
            }
            SignatureSource::ContainerPolicy => {
                write!(f, "ostree-image-signed:{t}:{}", self.imgref.name)
            }
            SignatureSource::OstreeRemote(r) if self.imgref.transport == Transport::Registry => {
                write!(f, "ostree-remote-registry:{r}:{}", self.imgref.name)
            }
            SignatureSource::OstreeRemote(r) => {
                write!(f, "ostree-remote-image:{r}:{t}:{}", self.imgref.name)
            }
        }
    }
}

impl OstreeImageReference {
    /// The one parser for what a user typed as an image, in every verb: a full `ostree-…:`
    /// reference, or a bare containers/image reference (`oci:/srv/os:1`,
    /// `docker://quay.io/os:1`, `containers-storage:localhost/os`), which stands for
    /// `ostree-unverified-image:` followed by it. Errors name the input: the bare form's error
    /// when it starts with a transport name, else the `ostree-…` grammar's.
    pub fn parse_any(s: &str) -> Result<Self, ParseError> {
        let ostree_err = match s.parse::<OstreeImageReference>() {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let starts_with_transport = s
            .split_once(':')
            .is_some_and(|(t, _)| Transport::from_name(t).is_some());
        match s.parse::<ImageReference>() {
            Ok(imgref) => Ok(OstreeImageReference {
                sigverify: SignatureSource::ContainerPolicyAllowInsecure,
                imgref,
            }),
            Err(e) if starts_with_transport => Err(e),
            Err(_) => Err(ostree_err),
        }
    }
}

impl ImageReference {
    /// For `oci:` and `oci-archive:`: the path, and the tag or `@digest` selecting a manifest
    /// in the index (None: the index must hold exactly one).
    pub fn oci_path_and_tag(&self) -> (&str, Option<&str>) {
        match self.name.split_once(':') {
            Some((p, t)) if !t.is_empty() => (p, Some(t)),
            Some((p, _)) => (p, None),
            None => (&self.name, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> OstreeImageReference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_form() {
        use SignatureSource::*;
        use Transport::*;
        let table: &[(&str, SignatureSource, Transport, &str)] = &[
            (
                "ostree-unverified-image:oci:/srv/img:latest",
                ContainerPolicyAllowInsecure,
                OciDir,
                "/srv/img:latest",
            ),
            (
                "ostree-unverified-image:oci-archive:/a.tar",
                ContainerPolicyAllowInsecure,
                OciArchive,
                "/a.tar",
            ),
            (
                "ostree-unverified-image:docker-archive:/a.tar:x",
                ContainerPolicyAllowInsecure,
                DockerArchive,
                "/a.tar:x",
            ),
            (
                "ostree-unverified-image:containers-storage:localhost/os",
                ContainerPolicyAllowInsecure,
                ContainerStorage,
                "localhost/os",
            ),
            (
                "ostree-unverified-image:dir:/d",
                ContainerPolicyAllowInsecure,
                Dir,
                "/d",
            ),
            (
                "ostree-unverified-image:registry:quay.io/a/b:1",
                ContainerPolicyAllowInsecure,
                Registry,
                "quay.io/a/b:1",
            ),
            (
                "ostree-unverified-image:docker://quay.io/a/b:1",
                ContainerPolicyAllowInsecure,
                Registry,
                "quay.io/a/b:1",
            ),
            (
                "ostree-unverified-registry:quay.io/a/b:1",
                ContainerPolicyAllowInsecure,
                Registry,
                "quay.io/a/b:1",
            ),
            (
                "ostree-remote-image:fedora:oci:/x:y",
                OstreeRemote("fedora".into()),
                OciDir,
                "/x:y",
            ),
            (
                "ostree-remote-registry:fedora:quay.io/fedora/coreos:stable",
                OstreeRemote("fedora".into()),
                Registry,
                "quay.io/fedora/coreos:stable",
            ),
            (
                "ostree-image-signed:docker://quay.io/x",
                ContainerPolicy,
                Registry,
                "quay.io/x",
            ),
            ("ostree-image-signed:oci:/x", ContainerPolicy, OciDir, "/x"),
        ];
        for (s, sig, t, name) in table {
            let r = ok(s);
            assert_eq!(&r.sigverify, sig, "{s}");
            assert_eq!(r.imgref.transport, *t, "{s}");
            assert_eq!(r.imgref.name, *name, "{s}");
            // Display re-parses to the same value.
            assert_eq!(ok(&r.to_string()), r, "{s} -> {r}");
        }
    }

    #[test]
    fn every_error() {
        type Case = (&'static str, fn(&ParseError) -> bool, &'static str);
        let table: &[Case] = &[
            (
                "quay.io/a",
                |e| matches!(e, ParseError::NoScheme(_)),
                "expected <scheme>",
            ),
            (
                "docker://quay.io/a",
                |e| matches!(e, ParseError::UnknownScheme(..)),
                "unknown scheme",
            ),
            (
                "ostree-remote-image:fedora",
                |e| matches!(e, ParseError::NoRemote(..)),
                "<remote>",
            ),
            (
                "ostree-remote-image::oci:/x",
                |e| matches!(e, ParseError::NoRemote(..)),
                "non-empty remote",
            ),
            (
                "ostree-remote-registry:quay.io",
                |e| matches!(e, ParseError::NoRemote(..)),
                "ostree-remote-registry:<remote>",
            ),
            (
                "ostree-unverified-image:/srv/img",
                |e| matches!(e, ParseError::NoTransport(_)),
                "<transport>:<name>",
            ),
            (
                "ostree-unverified-image:/srv/img:x",
                |e| matches!(e, ParseError::UnknownTransport(..)),
                "unknown transport \"/srv/img\"",
            ),
            (
                "ostree-unverified-image:oci",
                |e| matches!(e, ParseError::NoTransport(_)),
                "<transport>:<name>",
            ),
            (
                "ostree-unverified-image:foo:bar",
                |e| matches!(e, ParseError::UnknownTransport(..)),
                "\"foo\"",
            ),
            (
                "ostree-unverified-image:oci:",
                |e| matches!(e, ParseError::EmptyName(_)),
                "empty image name",
            ),
            (
                "ostree-unverified-registry:",
                |e| matches!(e, ParseError::EmptyName(_)),
                "empty image name",
            ),
            (
                "ostree-unverified-image:docker:quay.io/x",
                |e| matches!(e, ParseError::DockerSlashes(_)),
                "docker://",
            ),
        ];
        for (s, pred, text) in table {
            let e = s.parse::<OstreeImageReference>().unwrap_err();
            assert!(pred(&e), "{s}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(text), "{s}: {msg}");
            assert!(msg.contains(s), "{s}: message names the input: {msg}");
        }
    }

    #[test]
    fn any_form() {
        let p = |s: &str| OstreeImageReference::parse_any(s);
        let table = [
            ("oci:/x:t", "ostree-unverified-image:oci:/x:t"),
            (
                "docker://quay.io/a:1",
                "ostree-unverified-registry:quay.io/a:1",
            ),
            (
                "registry:quay.io/a:1",
                "ostree-unverified-registry:quay.io/a:1",
            ),
            (
                "containers-storage:localhost/os",
                "ostree-unverified-image:containers-storage:localhost/os",
            ),
            (
                "ostree-unverified-image:oci:/x:t",
                "ostree-unverified-image:oci:/x:t",
            ),
            (
                "ostree-remote-image:r:oci:/x",
                "ostree-remote-image:r:oci:/x",
            ),
            ("ostree-image-signed:oci:/x", "ostree-image-signed:oci:/x"),
        ];
        for (input, want) in table {
            assert_eq!(p(input).unwrap().to_string(), want, "{input}");
        }
        assert!(matches!(p("quay.io/a"), Err(ParseError::NoScheme(_))));
        assert!(matches!(p("oci:"), Err(ParseError::EmptyName(_))));
        assert!(matches!(
            p("docker:quay.io/a"),
            Err(ParseError::DockerSlashes(_))
        ));
        assert!(matches!(
            p("ostree-unverified-image:tarball:/x"),
            Err(ParseError::UnknownTransport(..))
        ));
        assert!(matches!(
            p("ostree-remote-image:r"),
            Err(ParseError::NoRemote(..))
        ));
    }

    #[test]
    fn containers_image_form() {
        let r = ok("ostree-unverified-registry:quay.io/a:1");
        assert_eq!(r.imgref.to_string(), "docker://quay.io/a:1");
        let r = ok("ostree-unverified-image:oci:/srv/img:latest");
        assert_eq!(r.imgref.to_string(), "oci:/srv/img:latest");
        assert_eq!(r.imgref.oci_path_and_tag(), ("/srv/img", Some("latest")));
        let r = ok("ostree-unverified-image:oci:/srv/img");
        assert_eq!(r.imgref.oci_path_and_tag(), ("/srv/img", None));
    }
}
