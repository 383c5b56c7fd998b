//! `--include`/`--exclude` on `schema.name`, matched client-side so that no
//! SQL is ever built from what a user typed.

use regex::Regex;

use crate::session::databases::parse_regex;

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Relations")]
pub struct RelationArgs {
    /// Only relations whose schema.name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include: Option<Regex>,
    /// Skip relations whose schema.name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude: Option<Regex>,
}

impl RelationArgs {
    pub fn keeps(&self, schema: &str, name: &str) -> bool {
        let qualified = format!("{schema}.{name}");
        self.include.as_ref().is_none_or(|r| r.is_match(&qualified))
            && !self
                .exclude
                .as_ref()
                .is_some_and(|r| r.is_match(&qualified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: Option<&str>, exclude: Option<&str>) -> RelationArgs {
        RelationArgs {
            include: include.map(|r| parse_regex(r).unwrap()),
            exclude: exclude.map(|r| parse_regex(r).unwrap()),
        }
    }

    #[test]
    fn include_then_exclude_on_the_qualified_name() {
        let f = filter(Some("^public\\."), Some("_log$"));
        assert!(f.keeps("public", "orders"));
        assert!(!f.keeps("public", "orders_log"));
        assert!(!f.keeps("audit", "orders"));
        assert!(filter(None, None).keeps("any", "thing"));
    }

    #[test]
    fn a_bad_pattern_is_one_line() {
        let err = parse_regex("(unclosed").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }
}
