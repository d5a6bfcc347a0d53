//! The SQL dialect, so that code and muscle memory from PostgreSQL carry over: `LISTEN`,
//! `UNLISTEN`, `NOTIFY`, transaction control with savepoints, `DISCARD ALL`, and `SELECT` of
//! constants and of `pg_notify`, `pg_listening_channels`, `pg_notification_queue_usage`,
//! `pg_backend_pid`. Several statements in one call run as one implicit transaction, as in
//! PostgreSQL's simple query protocol.

mod hint;
mod lexer;
mod params;
mod parser;
mod pyformat;
mod split;
mod value;

pub use params::{escape_identifier, escape_literal, Param};
pub use pyformat::{convert_pyformat, Placeholders, PyFormatQuery};
pub use split::split_statements;

use crate::error::{Error, ErrorKind, Result};
use crate::session::{Connection, ListenAction, State};
use lexer::{lex, Tok};
use parser::{parse, End, Expr, SelectItem, Stmt};
use value::Value;

/// The result of one statement, as libpq's `PGresult` would show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResult {
    /// The command tag (`LISTEN`, `NOTIFY`, `BEGIN`, `SELECT 1`, …); empty for an empty query.
    pub tag: String,
    /// Column names of a `SELECT`.
    pub columns: Vec<String>,
    /// PostgreSQL's type name of each column (`int4`, `text`, `float8`, `bool`, `void`, …), so
    /// that a client can format or convert values as it would PostgreSQL's.
    pub types: Vec<&'static str>,
    /// Rows of a `SELECT`, as text; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

impl QueryResult {
    fn command(tag: &str) -> QueryResult {
        QueryResult { tag: tag.to_owned(), ..QueryResult::default() }
    }
    /// Whether the statement text held no statement at all.
    pub fn is_empty_query(&self) -> bool {
        self.tag.is_empty()
    }
}

impl Connection {
    /// Executes SQL text and returns the result of its last statement (like `PQexec`).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("hark-doc-exec-{}", std::process::id()));
    /// let mut c = hark::Connection::open(&dir)?;
    /// c.execute("LISTEN Virtual")?;                       // unquoted: folded to "virtual"
    /// c.execute("NOTIFY virtual, 'This is the payload'")?;
    /// let n = c.notifies()?.unwrap();
    /// assert_eq!((n.channel.as_str(), n.payload.as_str()), ("virtual", "This is the payload"));
    /// assert_eq!(n.pid, c.backend_pid());                  // self-notifies arrive too
    /// let r = c.execute("SELECT pg_notify('fo' || 'o', 'pay' || 'load'), pg_listening_channels()")?;
    /// assert_eq!(r.columns, ["pg_notify", "pg_listening_channels"]);
    /// assert_eq!(r.rows, [[Some(String::new()), Some("virtual".to_string())]]);
    /// # drop(c); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), hark::Error>(())
    /// ```
    pub fn execute(&mut self, sql: &str) -> Result<QueryResult> {
        let (mut results, r) = self.execute_all(sql);
        r?;
        Ok(results.pop().unwrap_or_default())
    }

    /// Executes SQL text and returns the result of every statement that ran, in order, with the
    /// error that stopped the rest, if any (what psql shows for a line of several statements).
    /// An empty text gives no result.
    pub fn execute_all(&mut self, sql: &str) -> (Vec<QueryResult>, Result<()>) {
        self.execute_with(sql, None)
    }

    /// Executes one statement with parameters `$1`, `$2`, … bound to `params`, as libpq's
    /// `PQexecParams` does through PostgreSQL's extended query protocol. The values are never
    /// pasted into the text: whatever they hold (quotes, backslashes, `$$`, `--`, `;`) stays a
    /// value. As PostgreSQL, the text may hold one statement only (`42601 cannot insert multiple
    /// commands into a prepared statement`), there is no `$0` (`42P02 there is no parameter $0`),
    /// a `$k` below the highest `$n` that the statement does not use has no type unless its value
    /// has one (`42P18 could not determine data type of parameter $2`), the values must number
    /// the highest `$n` (`08P01 bind message supplies 1 parameters, but prepared statement ""
    /// requires 2`), and text may not hold a NUL (`22021`). A
    /// [`Param::Text`] has no type until used: text in `pg_notify($1, $2)`, read by a cast in
    /// `$1::int`.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("hark-doc-params-{}", std::process::id()));
    /// use hark::Param;
    /// let mut c = hark::Connection::open(&dir)?;
    /// c.execute("LISTEN events")?;
    /// c.execute_params("SELECT pg_notify($1, $2)", &["events".into(), "it's; -- a value".into()])?;
    /// assert_eq!(c.notifies()?.unwrap().payload, "it's; -- a value");
    /// let r = c.execute_params("SELECT $1::int AS n, $2 AS s", &["42".into(), Param::Null])?;
    /// assert_eq!(r.rows, [[Some("42".to_string()), None]]);
    /// # drop(c); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), hark::Error>(())
    /// ```
    pub fn execute_params(&mut self, sql: &str, params: &[Param]) -> Result<QueryResult> {
        let (mut results, r) = self.execute_with(sql, Some(params));
        r?;
        Ok(results.pop().unwrap_or_default())
    }

    fn execute_with(&mut self, sql: &str, params: Option<&[Param]>) -> (Vec<QueryResult>, Result<()>) {
        if let Err(e) = self.check_usable() {
            return (Vec::new(), Err(e));
        }
        crate::sys::fault::panic_on_sql(sql);
        let mut results = Vec::new();
        let r = self.execute_inner(sql, params, &mut results);
        if r.is_err() {
            self.block.fail();
        }
        (results, r)
    }

    fn execute_inner(&mut self, sql: &str, params: Option<&[Param]>, results: &mut Vec<QueryResult>) -> Result<()> {
        // Like PostgreSQL, the whole string is parsed before any of it runs.
        let lexer::Lexed { tokens, notices } = lex(sql)?;
        for n in notices {
            self.notice(n);
        }
        let end_of_input = sql.chars().count() + 1;
        let mut stmts = Vec::new();
        let mut from = 0;
        while from <= tokens.len() {
            let semi = tokens[from..].iter().position(|t| t.tok == Tok::Op(";".into())).map(|k| from + k);
            let to = semi.unwrap_or(tokens.len());
            let end = semi.map_or(End::Input(end_of_input), |k| End::Semicolon(tokens[k].pos));
            match parse(&tokens[from..to], end)? {
                Stmt::Empty => {}
                s => stmts.push((s, from..to)),
            }
            from = to + 1;
        }
        if let Some(values) = params {
            // The extended protocol's order: the statement is parsed and analysed, then bound.
            if stmts.len() > 1 {
                return Err(params::multiple_commands());
            }
            let required = params::check_refs(&tokens, values)?;
            params::check_bind(required, values)?;
        }
        let values = params.unwrap_or_default();
        let multi = stmts.len() > 1;
        for (s, range) in stmts {
            if multi {
                self.block.start_implicit();
            }
            // Without values, a `$n` fails when its statement is analysed, as in PostgreSQL.
            if params.is_none() {
                params::check_no_refs(&tokens[range])?;
            }
            results.push(self.run(s, values)?);
        }
        if self.block.state() == State::Implicit {
            self.end_txn()?;
        }
        Ok(())
    }

    fn run(&mut self, s: Stmt, params: &[Param]) -> Result<QueryResult> {
        match s {
            Stmt::Empty => Ok(QueryResult::default()),
            Stmt::Listen(ch) => {
                self.statement(|c| c.record_listen(ch))?;
                Ok(QueryResult::command("LISTEN"))
            }
            Stmt::Unlisten(ch) => {
                self.statement(|c| {
                    c.record_unlisten(match ch {
                        Some(ch) => ListenAction::Unlisten(ch),
                        None => ListenAction::UnlistenAll,
                    });
                    Ok(())
                })?;
                Ok(QueryResult::command("UNLISTEN"))
            }
            Stmt::Notify { channel, payload } => {
                let payload = payload.unwrap_or_default();
                self.statement(|c| {
                    c.check_notify(&channel, &payload)?;
                    c.block.txn.notify(&channel, &payload);
                    Ok(())
                })?;
                Ok(QueryResult::command("NOTIFY"))
            }
            Stmt::Begin { start } => {
                self.begin()?;
                Ok(QueryResult::command(if start { "START TRANSACTION" } else { "BEGIN" }))
            }
            Stmt::Commit { chain, .. } => self.end_block(true, chain),
            Stmt::Rollback { chain } => self.end_block(false, chain),
            Stmt::Savepoint(n) => {
                self.savepoint(&n)?;
                Ok(QueryResult::command("SAVEPOINT"))
            }
            Stmt::Release(n) => {
                self.release(&n)?;
                Ok(QueryResult::command("RELEASE"))
            }
            Stmt::RollbackTo(n) => {
                self.rollback_to(&n)?;
                Ok(QueryResult::command("ROLLBACK"))
            }
            Stmt::DiscardAll => {
                if !self.block.is_idle() {
                    return Err(Error::new(
                        ErrorKind::TransactionState,
                        "25001",
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                self.unlisten_all()?;
                Ok(QueryResult::command("DISCARD ALL"))
            }
            Stmt::Select(items) => self.statement(|c| c.select(&items, params)),
            Stmt::Prepare(_) => self.prepare_transaction(),
            Stmt::FinishPrepared { commit, gid } => {
                let word = if commit { "COMMIT PREPARED" } else { "ROLLBACK PREPARED" };
                match self.block.state() {
                    State::Failed => Err(Error::aborted_block()),
                    State::Explicit | State::Implicit => Err(Error::new(
                        ErrorKind::TransactionState,
                        "25001",
                        format!("{word} cannot run inside a transaction block"),
                    )),
                    // Nothing can have been prepared (see prepare_transaction).
                    State::Idle => Err(Error::new(
                        ErrorKind::TransactionState,
                        "42704",
                        format!("prepared transaction with identifier \"{gid}\" does not exist"),
                    )),
                }
            }
        }
    }

    /// `PREPARE TRANSACTION`: PostgreSQL refuses it for a transaction that ran LISTEN, UNLISTEN
    /// or NOTIFY (R25); hark has no two-phase commit at all, so it refuses the others as a
    /// PostgreSQL server with `max_prepared_transactions = 0` does. Either way the transaction
    /// ends, rolled back, as there.
    fn prepare_transaction(&mut self) -> Result<QueryResult> {
        match self.block.state() {
            State::Idle => {
                self.warn_no_transaction();
                Ok(QueryResult::command("ROLLBACK"))
            }
            State::Failed => {
                self.block.abort();
                self.deliver()?;
                Ok(QueryResult::command("ROLLBACK"))
            }
            State::Explicit | State::Implicit => {
                if self.block.state() == State::Implicit {
                    self.warn_no_transaction();
                }
                let listened_or_notified = !self.block.txn.is_empty();
                self.block.abort();
                self.deliver()?;
                Err(if listened_or_notified {
                    Error::new(
                        ErrorKind::TransactionState,
                        "0A000",
                        "cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY",
                    )
                } else {
                    Error::new(ErrorKind::TransactionState, "55000", "prepared transactions are disabled")
                        .with_hint("hark has no two-phase commit.")
                })
            }
        }
    }

    /// COMMIT / ROLLBACK [AND CHAIN] in every transaction state, with PostgreSQL's tags.
    fn end_block(&mut self, commit: bool, chain: bool) -> Result<QueryResult> {
        let word = if commit { "COMMIT" } else { "ROLLBACK" };
        match self.block.state() {
            State::Idle | State::Implicit => {
                if chain {
                    return Err(Error::new(
                        ErrorKind::TransactionState,
                        "25P01",
                        format!("{word} AND CHAIN can only be used in transaction blocks"),
                    ));
                }
                self.warn_no_transaction();
                if self.block.state() == State::Implicit {
                    if commit {
                        self.end_txn()?;
                    } else {
                        self.block.abort();
                    }
                }
                Ok(QueryResult::command(word))
            }
            State::Explicit if commit => {
                if chain {
                    // The session stays in a transaction block: nothing is delivered (R13).
                    let r = self.commit_taken();
                    self.block.chain();
                    r?;
                } else {
                    self.end_txn()?;
                }
                Ok(QueryResult::command("COMMIT"))
            }
            State::Explicit | State::Failed => {
                if chain {
                    self.block.abort_and_chain();
                } else {
                    self.block.abort();
                    self.deliver()?;
                }
                Ok(QueryResult::command("ROLLBACK"))
            }
        }
    }

    fn select(&mut self, items: &[SelectItem], params: &[Param]) -> Result<QueryResult> {
        let mut columns = Vec::new();
        let mut types = Vec::new();
        let mut scalars: Vec<Option<Value>> = Vec::new();
        let mut set: Option<Vec<Value>> = None;
        for it in items {
            columns.push(it.alias.clone().unwrap_or_else(|| value::column_name(&it.expr).0));
            match self.eval(&it.expr, params)? {
                Evaluated::One(v) => {
                    // A cast's column has the type cast to, even where the value is kept in a
                    // wider one (int2 and int8 as i64, varchar as text, jsonb as json, NULL).
                    types.push(match &it.expr {
                        Expr::Cast(_, chain) => value::canonical_type(chain.last_type()).unwrap_or(v.pg_type()),
                        _ => v.pg_type(),
                    });
                    scalars.push(Some(v));
                }
                Evaluated::Set(vs) => {
                    types.push("text");
                    scalars.push(None);
                    set.get_or_insert(vs);
                }
            }
        }
        let n = set.as_ref().map_or(1, |s| s.len());
        let rows: Vec<Vec<Option<String>>> = (0..n)
            .map(|r| {
                scalars
                    .iter()
                    .map(|v| match v {
                        Some(v) => v.output(),
                        None => set.as_ref().and_then(|s| s[r].output()),
                    })
                    .collect()
            })
            .collect();
        Ok(QueryResult { tag: format!("SELECT {}", rows.len()), columns, types, rows })
    }

    /// A select-list item's value: a set-returning function may give a set here, nowhere else.
    fn eval(&mut self, e: &Expr, params: &[Param]) -> Result<Evaluated> {
        match e {
            Expr::Call { name, args, pos } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval_one(a, params)?);
                }
                self.call(name, vals, *pos)
            }
            _ => Ok(Evaluated::One(self.eval_one(e, params)?)),
        }
    }

    /// The value of an expression, computed in the order a recursive evaluation would (operands
    /// left to right, each operator or call once its operands are known) but with explicit
    /// stacks, so that neither a long chain nor deep nesting uses the thread's stack.
    fn eval_one(&mut self, e: &Expr, params: &[Param]) -> Result<Value> {
        enum Step<'e> {
            Eval(&'e Expr),
            Concat(usize),
            Cast(&'e parser::CastChain),
            Call(&'e str, usize, usize),
        }
        let mut steps = vec![Step::Eval(e)];
        let mut values: Vec<Value> = Vec::new();
        while let Some(step) = steps.pop() {
            match step {
                Step::Eval(e) => {
                    if let Some(v) = value::literal(e)? {
                        values.push(v);
                        continue;
                    }
                    match e {
                        Expr::Concat(first, rest) => {
                            for (e, pos) in rest.iter().rev() {
                                steps.push(Step::Concat(*pos));
                                steps.push(Step::Eval(e));
                            }
                            steps.push(Step::Eval(first));
                        }
                        Expr::Cast(operand, chain) => {
                            steps.push(Step::Cast(chain));
                            steps.push(Step::Eval(operand));
                        }
                        Expr::Call { name, args, pos } => {
                            steps.push(Step::Call(name, args.len(), *pos));
                            steps.extend(args.iter().rev().map(Step::Eval));
                        }
                        // Checked against the values before the statement ran (check_refs).
                        Expr::Param { n, .. } => values.push(params[*n - 1].value()),
                        _ => unreachable!("literals handled above"),
                    }
                }
                Step::Concat(pos) => {
                    let b = values.pop().expect("the right operand was evaluated");
                    let a = values.pop().expect("the left operand was evaluated");
                    values.push(value::concat(a, b, pos)?);
                }
                Step::Cast(chain) => {
                    let v = values.pop().expect("the operand was evaluated");
                    values.push(value::cast_chain(v, chain)?);
                }
                Step::Call(name, n, pos) => {
                    let args = values.split_off(values.len() - n);
                    match self.call(name, args, pos)? {
                        Evaluated::One(v) => values.push(v),
                        Evaluated::Set(_) => return Err(set_not_allowed()),
                    }
                }
            }
        }
        Ok(values.pop().expect("an expression has a value"))
    }

    fn call(&mut self, name: &str, args: Vec<Value>, pos: usize) -> Result<Evaluated> {
        let types: Vec<&str> = args.iter().map(|a| a.type_name()).collect();
        let ok = match (name, args.len()) {
            ("pg_notify", 2) => args.iter().all(Value::is_textual),
            ("pg_listening_channels" | "pg_notification_queue_usage" | "pg_backend_pid", 0) => true,
            _ => false,
        };
        if !ok {
            return Err(Error::new(
                ErrorKind::Syntax,
                "42883",
                format!("function {name}({}) does not exist", types.join(", ")),
            )
            .with_hint(
                "No function matches the given name and argument types. You might need to add explicit type casts.",
            )
            .at(pos));
        }
        Ok(match name {
            "pg_notify" => {
                // Not STRICT: a NULL channel is "cannot be empty", a NULL payload is empty (R2, R3).
                let channel = args[0].output().unwrap_or_default();
                let payload = args[1].output().unwrap_or_default();
                self.check_notify(&channel, &payload)?;
                self.block.txn.notify(&channel, &payload);
                Evaluated::One(Value::Void)
            }
            "pg_listening_channels" => Evaluated::Set(self.listening_channels().into_iter().map(Value::Text).collect()),
            "pg_notification_queue_usage" => Evaluated::One(Value::Float(self.queue_usage()?)),
            _ => Evaluated::One(Value::Int(self.backend_pid() as i64)),
        })
    }
}

enum Evaluated {
    One(Value),
    Set(Vec<Value>),
}

#[cold]
fn set_not_allowed() -> Error {
    Error::new(ErrorKind::Syntax, "0A000", "set-returning functions are not allowed here")
}

#[cfg(test)]
mod tests {
    use super::value::{float8_out, numeric_out};

    #[test]
    fn float8_matches_postgres() {
        assert_eq!(float8_out(0.0), "0");
        assert_eq!(float8_out(0.5), "0.5");
        assert_eq!(float8_out(1.9073486328125e-06), "1.9073486328125e-06");
        assert_eq!(float8_out(0.0001), "0.0001");
        assert_eq!(float8_out(1e15), "1e+15");
        assert_eq!(float8_out(123456789012345.0), "123456789012345");
        assert_eq!(float8_out(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn numeric_literals_keep_scale() {
        assert_eq!(numeric_out("1.50"), "1.50");
        assert_eq!(numeric_out(".5"), "0.5");
        assert_eq!(numeric_out("1e3"), "1000");
        assert_eq!(numeric_out("1.5e2"), "150");
        assert_eq!(numeric_out("1.25e-1"), "0.125");
        assert_eq!(numeric_out("-0.0"), "0.0");
    }
}
