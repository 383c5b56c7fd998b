//! One perfdata item read by the guidelines' grammar:
//! `'label'=value[UOM];[warn];[crit];[min];[max]`.

#[derive(Debug, PartialEq)]
pub struct Item {
    pub label: String,
    pub value: f64,
    pub uom: String,
    /// warn, crit, min, max as printed (empty when left out).
    pub fields: Vec<String>,
}

/// Quoted labels take `''` for a quote; a bare label runs to the first `=`.
pub fn parse_item(item: &str) -> Option<Item> {
    let (label, rest) = if let Some(quoted) = item.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '\'') if quoted[i + 1..].starts_with('\'') => {
                    label.push('\'');
                    chars.next();
                }
                (i, '\'') => break i,
                (_, c) => label.push(c),
            }
        };
        (label, quoted[end + 1..].strip_prefix('=')?)
    } else {
        let (label, rest) = item.split_once('=')?;
        (label.to_string(), rest)
    };
    let mut fields = rest.split(';');
    let first = fields.next()?;
    let split = first
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(first.len());
    Some(Item {
        label,
        value: first[..split].parse().ok()?,
        uom: first[split..].to_string(),
        fields: fields.map(String::from).collect(),
    })
}

/// A numeric field (warn, crit, min, max) as a number, `None` when empty.
pub fn number(field: Option<&String>) -> Option<f64> {
    field.filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_bare_items() {
        let item = parse_item("'it''s a=b'=12.5%;;90;0;100").unwrap();
        assert_eq!(item.label, "it's a=b");
        assert_eq!(item.value, 12.5);
        assert_eq!(item.uom, "%");
        assert_eq!(number(item.fields.get(1)), Some(90.0));
        assert_eq!(number(item.fields.first()), None);
        assert_eq!(parse_item("lag=-1s").unwrap().value, -1.0);
        assert_eq!(parse_item("'unterminated=1"), None);
    }
}
