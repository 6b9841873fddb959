//! The caller's language, from gRPC `accept-language` metadata.

/// Languages the service answers in. English unless the caller prefers French.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    En,
    Fr,
}

impl Language {
    /// Picks the supported language with the highest quality value; ties go to the one listed
    /// first, and a header naming neither language means English.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(Language, f32)> = None;
        for range in header.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or("");
            let language = match primary {
                "fr" => Language::Fr,
                "en" => Language::En,
                _ => continue,
            };
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            if best.is_none_or(|(_, q)| quality > q) {
                best = Some((language, quality));
            }
        }
        best.map(|(l, _)| l).unwrap_or_default()
    }

    /// The value forwarded to Novasend as `Accept-Language`.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    /// Chooses between an English and a French text.
    pub fn pick<T>(self, en: T, fr: T) -> T {
        match self {
            Language::En => en,
            Language::Fr => fr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Language::{self, En, Fr};

    #[test]
    fn reads_accept_language_like_a_browser() {
        for (header, expected) in [
            ("fr", Fr),
            ("fr-FR", Fr),
            ("FR-ca", Fr),
            ("fr;q=0.9, en;q=0.5", Fr),
            ("en;q=0.5, fr;q=0.9", Fr),
            ("en, fr", En),
            ("en-US,en;q=0.9,fr;q=0.8", En),
            ("de, fr;q=0.4", Fr),
            ("de", En),
            ("", En),
            ("fr;q=0, en;q=0.1", En),
            ("garbage;;q=x", En),
        ] {
            assert_eq!(
                Language::from_accept_language(header),
                expected,
                "{header:?}"
            );
        }
    }
}
