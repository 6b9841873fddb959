//! Which provider takes a payin that names none: by country (`PAYMENTS_ROUTES`, §9).

/// `CI:hub2,SN:hub2,*:novasend`: a provider per country, and one for every other country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    by_country: Vec<(String, String)>,
    otherwise: String,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            by_country: Vec::new(),
            otherwise: "novasend".into(),
        }
    }
}

impl Routes {
    /// Reads `COUNTRY:provider` pairs separated by commas, with exactly one `*:provider`
    /// for the other countries. Country codes are upper case, provider names lower case.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut by_country: Vec<(String, String)> = Vec::new();
        let mut otherwise = None;
        for pair in raw.split(',').map(str::trim) {
            let Some((country, provider)) = pair.split_once(':') else {
                return Err(format!("`{pair}` is not COUNTRY:provider"));
            };
            let (country, provider) = (country.trim(), provider.trim());
            let name_ok = !provider.is_empty()
                && provider
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !name_ok {
                return Err(format!("`{provider}` is not a provider name (lower case)"));
            }
            if country == "*" {
                if otherwise.replace(provider.to_owned()).is_some() {
                    return Err("`*` is routed twice".into());
                }
            } else if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
                if by_country.iter().any(|(c, _)| c == country) {
                    return Err(format!("{country} is routed twice"));
                }
                by_country.push((country.to_owned(), provider.to_owned()));
            } else {
                return Err(format!(
                    "`{country}` is not an upper-case country code nor `*`"
                ));
            }
        }
        let otherwise = otherwise.ok_or("no `*:provider` for the other countries")?;
        Ok(Self {
            by_country,
            otherwise,
        })
    }

    /// The provider for a payin in `country`.
    pub fn provider_for(&self, country: &str) -> &str {
        self.by_country
            .iter()
            .find(|(c, _)| c == country)
            .map_or(&self.otherwise, |(_, p)| p)
    }

    /// Every provider a route names.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.by_country
            .iter()
            .map(|(_, p)| p.as_str())
            .chain([self.otherwise.as_str()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_country_and_the_rest() {
        let routes = Routes::parse("CI:hub2, SN:hub2,*:novasend").unwrap();
        assert_eq!(routes.provider_for("CI"), "hub2");
        assert_eq!(routes.provider_for("SN"), "hub2");
        assert_eq!(routes.provider_for("CM"), "novasend");
        assert_eq!(Routes::default().provider_for("CI"), "novasend");
        assert_eq!(
            routes.providers().collect::<Vec<_>>(),
            ["hub2", "hub2", "novasend"]
        );
    }

    #[test]
    fn refuses_what_cannot_be_routed_surely() {
        for bad in [
            "",
            "CI:hub2",
            "CI=hub2,*:novasend",
            "ci:hub2,*:novasend",
            "CIV:hub2,*:novasend",
            "CI:HUB2,*:novasend",
            "CI:,*:novasend",
            "CI:hub2,CI:novasend,*:novasend",
            "*:hub2,*:novasend",
            "CI:hub2,,*:novasend",
        ] {
            assert!(Routes::parse(bad).is_err(), "{bad:?}");
        }
    }
}
