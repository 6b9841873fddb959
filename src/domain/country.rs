//! The countries payins may be taken in, each with its one currency.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countries(BTreeMap<String, String>);

impl Default for Countries {
    /// UEMOA countries pay in XOF, Cameroon in XAF.
    fn default() -> Self {
        Self::parse("CI:XOF,SN:XOF,TG:XOF,BJ:XOF,ML:XOF,BF:XOF,NE:XOF,CM:XAF")
            .expect("the default country table is well formed")
    }
}

impl Countries {
    /// Parses `CI:XOF,CM:XAF`: ISO 3166-1 alpha-2 codes, each with an ISO 4217 currency.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut table = BTreeMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (country, currency) = entry
                .split_once(':')
                .ok_or_else(|| format!("`{entry}` is not COUNTRY:CURRENCY"))?;
            let upper_letters =
                |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_uppercase());
            if !upper_letters(country, 2) || !upper_letters(currency, 3) {
                return Err(format!(
                    "`{entry}` needs a 2-letter upper-case country and a 3-letter upper-case currency"
                ));
            }
            table.insert(country.to_owned(), currency.to_owned());
        }
        if table.is_empty() {
            return Err("no country configured".into());
        }
        Ok(Self(table))
    }

    pub fn currency_of(&self, country: &str) -> Option<&str> {
        self.0.get(country).map(String::as_str)
    }

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_the_contract() {
        let countries = Countries::default();
        for code in ["CI", "SN", "TG", "BJ", "ML", "BF", "NE"] {
            assert_eq!(countries.currency_of(code), Some("XOF"));
        }
        assert_eq!(countries.currency_of("CM"), Some("XAF"));
        assert_eq!(countries.currency_of("ci"), None);
        assert_eq!(countries.currency_of("GH"), None);
    }

    #[test]
    fn rejects_malformed_tables() {
        assert!(Countries::parse("").is_err());
        assert!(Countries::parse("CI").is_err());
        assert!(Countries::parse("ci:XOF").is_err());
        assert!(Countries::parse("CIV:XOF").is_err());
        assert_eq!(
            Countries::parse("GH:GHS, CI:XOF")
                .unwrap()
                .currency_of("GH"),
            Some("GHS")
        );
    }
}
