//! A deployment's origin file: which image the machine follows.
//!
//! libostree keeps one key file per deployment, `ostree/deploy/<stateroot>/deploy/<checksum>.<serial>.origin`.
//! ostree-rs-ext, rpm-ostree and bootc write, for a deployment of a container image:
//!
//! ```text
//! [origin]
//! container-image-reference=ostree-unverified-image:oci:/srv/os:latest
//! ```
//!
//! and read that key back to find the next version (`rpm-ostree upgrade`, `bootc upgrade`). We
//! write exactly that, so each of those tools can take over a machine deployed here, and the
//! reverse. A deployment of a plain ostree ref has `refspec=<remote>:<ref>` instead; it follows no
//! image, and [`read`] says so with [`Origin::Refspec`].

use ostree::glib;

use crate::oci::imgref::{OstreeImageReference, ParseError};

/// The key file group.
pub const GROUP: &str = "origin";
/// The key naming the image, as ostree-rs-ext, rpm-ostree and bootc spell it.
pub const IMAGE_KEY: &str = "container-image-reference";
/// The key of a deployment of an ostree ref.
pub const REFSPEC_KEY: &str = "refspec";

/// What a deployment follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An image (`container-image-reference=`).
    Image(OstreeImageReference),
    /// An ostree ref (`ostree admin deploy`, `rpm-ostree rebase <ref>`): not an image.
    Refspec(String),
    /// No origin file, or one with neither key.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
/// Why an origin file could not be understood.
pub enum OriginError {
    #[error("the origin's {IMAGE_KEY} is not an image reference: {0}")]
    /// `container-image-reference=` is not an image reference.
    BadImage(#[from] ParseError),
}

/// The origin key file of a deployment that follows `imgref`.
pub fn for_image(imgref: &OstreeImageReference) -> glib::KeyFile {
    let kf = glib::KeyFile::new();
    kf.set_string(GROUP, IMAGE_KEY, &imgref.to_string());
    kf
}

/// What an origin key file names.
pub fn read(kf: Option<&glib::KeyFile>) -> Result<Origin, OriginError> {
    let Some(kf) = kf else {
        return Ok(Origin::Unknown);
    };
    if let Ok(s) = kf.string(GROUP, IMAGE_KEY) {
        return Ok(Origin::Image(s.parse()?));
    }
    if let Ok(s) = kf.string(GROUP, REFSPEC_KEY) {
        return Ok(Origin::Refspec(s.to_string()));
    }
    Ok(Origin::Unknown)
}

/// Parse an origin file's text (what libostree hands us already parsed; for tests and tools).
pub fn parse(text: &str) -> Result<Origin, OriginError> {
    let kf = glib::KeyFile::new();
    if kf.load_from_data(text, glib::KeyFileFlags::NONE).is_err() {
        return Ok(Origin::Unknown);
    }
    read(Some(&kf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_ostree_rs_ext_writes_it() {
        let r: OstreeImageReference =
            "ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable"
                .parse()
                .unwrap();
        let text = for_image(&r).to_data().to_string();
        assert_eq!(
            text.trim(),
            "[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable"
        );
        assert_eq!(parse(&text).unwrap(), Origin::Image(r));
    }

    #[test]
    fn read_what_other_tools_write() {
        // bootc and rpm-ostree may add keys of their own; only ours matters.
        let bootc = "[origin]\ncontainer-image-reference=ostree-image-signed:docker://quay.io/os:1\n\n[rpmostree]\ncustom-origin-url=x\n";
        assert!(matches!(parse(bootc).unwrap(), Origin::Image(_)));
        let admin = "[origin]\nrefspec=fedora:fedora/x86_64/coreos/stable\n";
        assert_eq!(
            parse(admin).unwrap(),
            Origin::Refspec("fedora:fedora/x86_64/coreos/stable".into())
        );
        assert_eq!(parse("").unwrap(), Origin::Unknown);
        assert_eq!(parse("not a key file [").unwrap(), Origin::Unknown);
        let bad = "[origin]\ncontainer-image-reference=quay.io/os:1\n";
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains("container-image-reference"), "{e}");
    }
}
