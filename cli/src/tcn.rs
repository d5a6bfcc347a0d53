//! The payload of PostgreSQL's `contrib/tcn` trigger (`triggered_change_notification()`), so that
//! `hark notify --tcn` speaks to consumers written for it.

/// The operation a change notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcnOp {
    Insert,
    Update,
    Delete,
}

impl TcnOp {
    /// Accepts tcn's letters `I`, `U`, `D` and the words `INSERT`, `UPDATE`, `DELETE`, in any case.
    pub fn parse(s: &str) -> Option<TcnOp> {
        match s.to_ascii_uppercase().as_str() {
            "I" | "INSERT" => Some(TcnOp::Insert),
            "U" | "UPDATE" => Some(TcnOp::Update),
            "D" | "DELETE" => Some(TcnOp::Delete),
            _ => None,
        }
    }

    fn letter(self) -> char {
        match self {
            TcnOp::Insert => 'I',
            TcnOp::Update => 'U',
            TcnOp::Delete => 'D',
        }
    }
}

/// `"<table>",<op>,"<col>"='<value>'…`: names in double quotes and values in single quotes, each
/// with its quote character doubled, key columns in the order given (tcn uses the primary key's
/// column order, and for an UPDATE the old row's values).
pub fn tcn_payload(table: &str, op: TcnOp, key: &[(String, String)]) -> String {
    let mut out = format!("\"{}\",{}", table.replace('"', "\"\""), op.letter());
    for (col, val) in key {
        out.push_str(&format!(",\"{}\"='{}'", col.replace('"', "\"\""), val.replace('\'', "''")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn documented_examples() {
        // The tcn documentation's examples, its regression test's, and quoting both ways.
        let key = kv(&[("a", "1"), ("b", "2012-12-22")]);
        assert_eq!(tcn_payload("tcndata", TcnOp::Insert, &key), r#""tcndata",I,"a"='1',"b"='2012-12-22'"#);
        let key = kv(&[("a", "1"), ("b", "2012-12-23")]);
        assert_eq!(tcn_payload("tcndata", TcnOp::Update, &key), r#""tcndata",U,"a"='1',"b"='2012-12-23'"#);
        let key = kv(&[("a", "1"), ("b", "2012-12-22")]);
        assert_eq!(tcn_payload("tcndata", TcnOp::Delete, &key), r#""tcndata",D,"a"='1',"b"='2012-12-22'"#);
        assert_eq!(tcn_payload("mytable", TcnOp::Insert, &kv(&[("key", "1")])), r#""mytable",I,"key"='1'"#);
        assert_eq!(tcn_payload("we\"ird", TcnOp::Insert, &kv(&[("k", "O'Brien")])), r#""we""ird",I,"k"='O''Brien'"#);
    }

    #[test]
    fn operations() {
        assert_eq!(TcnOp::parse("i"), Some(TcnOp::Insert));
        assert_eq!(TcnOp::parse("Update"), Some(TcnOp::Update));
        assert_eq!(TcnOp::parse("DELETE"), Some(TcnOp::Delete));
        assert_eq!(TcnOp::parse("X"), None);
    }
}
