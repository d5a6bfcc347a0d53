//! `hark_notify_changes(table, channel)` and `hark_notify_tcn(table[, channel])`: triggers that
//! call `pg_notify` for every row change, with the seeds' JSON event or tcn's payload.

use crate::state::State;
use rusqlite::functions::Context;
use rusqlite::{Connection, Error, Result};

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The table's columns (name, primary-key position), or PostgreSQL's error for a missing table.
fn columns(db: &Connection, table: &str) -> Result<Vec<(String, i64)>> {
    let mut stmt = db.prepare("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?;
    let cols: Vec<(String, i64)> = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_>>()?;
    if cols.is_empty() {
        return Err(Error::UserFunctionError(format!("relation \"{table}\" does not exist").into()));
    }
    Ok(cols)
}

/// One value as `row_to_json` writes it: numbers as numbers, text as strings, NULL as null, a
/// BLOB as bytea's text `\x…` (json_object refuses BLOBs).
fn json_value(row: &str, col: &str) -> String {
    let v = format!("{row}.{}", ident(col));
    format!("CASE typeof({v}) WHEN 'blob' THEN '\\x' || lower(hex({v})) ELSE {v} END")
}

/// (Re)creates the three triggers `hark_<channel>_<table>_<op>`, each firing `body(op, row)`.
fn install(db: &Connection, table: &str, channel: &str, tag: &str, body: impl Fn(&str, &str) -> String) -> Result<()> {
    for (op, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
        let row = if tag == "tcn" && op == "UPDATE" { "OLD" } else { row };
        let name = ident(&format!("hark_{tag}_{channel}_{table}_{}", op.to_lowercase()));
        db.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS {name};
             CREATE TRIGGER {name} AFTER {op} ON {} FOR EACH ROW BEGIN SELECT pg_notify({}, {}); END;",
            ident(table),
            literal(channel),
            body(op, row)
        ))?;
    }
    Ok(())
}

/// `hark_notify_changes(table, channel)`: `{"table" : "orders", "action" : "INSERT", "data" :
/// {…}}`, as PostgreSQL's `json_build_object('table', TG_TABLE_NAME, 'action', TG_OP, 'data',
/// row_to_json(NEW))::text` writes it.
pub(crate) fn notify_changes(_st: &State, ctx: &Context<'_>, db: &Connection) -> Result<Option<String>> {
    let table: String = ctx.get(0)?;
    let channel: String = ctx.get(1)?;
    let cols = columns(db, &table)?;
    if cols.len() > 60 {
        return Err(Error::UserFunctionError("hark_notify_changes: at most 60 columns".into()));
    }
    install(db, &table, &channel, "changes", |op, row| {
        let fields: Vec<String> = cols.iter().map(|(c, _)| format!("{}, {}", literal(c), json_value(row, c))).collect();
        format!(
            "{} || json_quote({}) || {} || json_object({}) || '}}'",
            literal("{\"table\" : "),
            literal(&table),
            literal(&format!(", \"action\" : \"{op}\", \"data\" : ")),
            fields.join(", ")
        )
    })?;
    Ok(Some(format!("notifying changes of {table} on channel {channel}")))
}

/// `hark_notify_tcn(table[, channel])`: tcn's `"orders",I,"id"='1'`, the primary key's columns
/// in key order, the old row's values for an UPDATE and a DELETE.
pub(crate) fn notify_tcn(_st: &State, ctx: &Context<'_>, db: &Connection) -> Result<Option<String>> {
    let table: String = ctx.get(0)?;
    let channel: String = if ctx.len() > 1 { ctx.get(1)? } else { "tcn".to_owned() };
    let mut key: Vec<(String, i64)> = columns(db, &table)?.into_iter().filter(|(_, pk)| *pk > 0).collect();
    if key.is_empty() {
        return Err(Error::UserFunctionError(
            "triggered_change_notification: must be called on a table with a primary key".into(),
        ));
    }
    key.sort_by_key(|(_, pk)| *pk);
    install(db, &table, &channel, "tcn", |op, row| {
        let mut parts = vec![literal(&format!("{},{}", ident(&table), &op[..1]))];
        for (c, _) in &key {
            parts.push(literal(&format!(",{}='", ident(c))));
            parts.push(format!("replace(CAST({row}.{} AS TEXT), '''', '''''')", ident(c)));
            parts.push(literal("'"));
        }
        parts.join(" || ")
    })?;
    Ok(Some(format!("notifying changes of {table} on channel {channel} (tcn)")))
}
