//! Container image references: `registry/repository:tag`, `…@sha256:…`, or both.
//!
//! RFC 013's own example stores `http://example.com/images/hatching/00001`, so a plain
//! http(s) URL is accepted as an opaque URI too. Anything else is refused before it is
//! pinned: a value that does not parse would only fail later, on the running service.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Container {
        /// Registry host (with port), when the reference names one.
        registry: Option<String>,
        repository: String,
        tag: Option<String>,
        digest: Option<String>,
    },
    /// An http(s) URL, kept as it is (RFC 013's example form).
    Url(String),
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("image URI is empty".into());
        }
        if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("image URI {text:?} contains {bad:?}"));
        }
        if let Some(rest) = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
        {
            let host = rest.split('/').next().unwrap_or_default();
            if host.is_empty() {
                return Err(format!("image URL {text:?} has no host"));
            }
            return Ok(Self::Url(text.to_owned()));
        }
        parse_container(text).map_err(|why| format!("image URI {text:?} does not parse: {why}"))
    }

    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Container { tag, .. } => tag.as_deref(),
            Self::Url(_) => None,
        }
    }

    pub fn digest(&self) -> Option<&str> {
        match self {
            Self::Container { digest, .. } => digest.as_deref(),
            Self::Url(_) => None,
        }
    }

    pub fn repository(&self) -> Option<&str> {
        match self {
            Self::Container { repository, .. } => Some(repository),
            Self::Url(_) => None,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::Container {
                registry,
                repository,
                tag,
                digest,
            } => {
                if let Some(registry) = registry {
                    write!(f, "{registry}/")?;
                }
                f.write_str(repository)?;
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

fn parse_container(text: &str) -> Result<ImageRef, String> {
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(parse_digest(digest)?)),
        None => (text, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].find(':') {
        Some(i) => {
            let at = last_slash + i;
            (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
        }
        None => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if tag.is_none() && digest.is_none() {
        return Err("it names no tag or digest; pin an exact version".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let registry = if parts.len() > 1 && looks_like_registry(parts[0]) {
        Some(parts.remove(0).to_owned())
    } else {
        None
    };
    for part in &parts {
        check_path_component(part)?;
    }
    Ok(ImageRef::Container {
        registry,
        repository: parts.join("/"),
        tag: tag.map(str::to_owned),
        digest,
    })
}

fn looks_like_registry(part: &str) -> bool {
    (part.contains('.') || part.contains(':') || part == "localhost")
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

fn check_path_component(part: &str) -> Result<(), String> {
    let ok = !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        && part.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "repository path component {part:?} must be lowercase letters, digits and separators"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("tag {tag:?} is not a valid image tag"))
    }
}

fn parse_digest(digest: &str) -> Result<String, String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} has no algorithm"))?;
    let ok = !algorithm.is_empty()
        && algorithm.chars().all(|c| c.is_ascii_alphanumeric())
        && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(digest.to_owned())
    } else {
        Err(format!("digest {digest:?} is not algorithm:hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECR: &str =
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/hatching:ref.abc123";

    #[test]
    fn an_ecr_uri_parses_into_its_parts() {
        let image = ImageRef::parse(ECR).unwrap();
        assert_eq!(
            image,
            ImageRef::Container {
                registry: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com".into()),
                repository: "uk.ac.wellcome/hatching".into(),
                tag: Some("ref.abc123".into()),
                digest: None,
            }
        );
        assert_eq!(image.to_string(), ECR);
    }

    #[test]
    fn digests_and_registry_ports_are_understood() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let image = ImageRef::parse(&format!("localhost:5000/app@{digest}")).unwrap();
        assert_eq!(image.digest(), Some(digest.as_str()));
        assert_eq!(image.tag(), None);
        assert_eq!(image.repository(), Some("app"));
    }

    #[test]
    fn the_rfc_013_example_url_is_accepted_as_is() {
        let url = "http://example.com/images/hatching/00001";
        assert_eq!(ImageRef::parse(url).unwrap(), ImageRef::Url(url.into()));
    }

    #[test]
    fn unparseable_uris_are_refused_with_a_reason() {
        for bad in [
            "",
            "repo",
            "Repo:1",
            "repo:",
            "repo:-x",
            "a b:1",
            "repo@sha256:zz",
            "http://",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let why = ImageRef::parse("registry.example/app").unwrap_err();
        assert!(why.contains("no tag or digest"), "{why}");
    }
}
