//! The grammar of hark's SQL dialect: PostgreSQL's LISTEN/NOTIFY/UNLISTEN, transaction control
//! (with the two-phase commands, which hark refuses as PostgreSQL does), and `SELECT` of constants
//! and of the notification functions.

use super::lexer::{Tok, Token};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// Nothing but whitespace or comments.
    Empty,
    Listen(String),
    /// `None` for `UNLISTEN *`.
    Unlisten(Option<String>),
    Notify { channel: String, payload: Option<String> },
    Begin { start: bool },
    Commit { chain: bool, end: bool },
    Rollback { chain: bool },
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    Select(Vec<SelectItem>),
    DiscardAll,
    /// `PREPARE TRANSACTION 'gid'`.
    Prepare(String),
    /// `COMMIT PREPARED 'gid'` (true) or `ROLLBACK PREPARED 'gid'` (false).
    FinishPrepared { commit: bool, gid: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    pub expr: Expr,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(String),
    Num(String),
    Null,
    Bool(bool),
    Call { name: String, args: Vec<Expr>, pos: usize },
    Concat(Box<Expr>, Box<Expr>, usize),
    /// `operand::type`, with the positions of the type name, of the operand and of the `::`.
    Cast(Box<Expr>, String, usize, usize, usize),
}

/// PostgreSQL's reserved and type/function-name keywords: not usable as a bare `ColId`.
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast",
    "check", "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role",
    "current_time", "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
    "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in",
    "initially", "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
    "null", "offset", "on", "only", "or", "order", "placing", "primary", "references", "returning", "select",
    "session_user", "some", "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "user",
    "using", "variadic", "when", "where", "window", "with", "authorization", "binary", "collation",
    "concurrently", "cross", "current_schema", "freeze", "full", "ilike", "inner", "is", "isnull", "join",
    "left", "like", "natural", "notnull", "outer", "overlaps", "right", "similar", "tablesample", "verbose",
];

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    /// Where the statement ends: its `;` (PostgreSQL's parser sees it as a token), or the end
    /// of the text, for `at end of input`.
    end: End,
}

/// How a statement's tokens end.
#[derive(Clone, Copy)]
pub enum End {
    /// At a `;` at this position.
    Semicolon(usize),
    /// At the end of the text; the position just past it.
    Input(usize),
}

impl End {
    fn pos(self) -> usize {
        match self {
            End::Semicolon(p) | End::Input(p) => p,
        }
    }
}

/// Parses one statement's tokens (without its terminating `;`).
pub fn parse(toks: &[Token], end: End) -> Result<Stmt> {
    let mut p = Parser { toks, i: 0, end };
    if toks.is_empty() {
        return Ok(Stmt::Empty);
    }
    let stmt = p.statement()?;
    if p.i < toks.len() {
        return Err(p.unexpected());
    }
    Ok(stmt)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn unexpected(&self) -> Error {
        match self.toks.get(self.i) {
            Some(t) => Error::syntax(format!("syntax error at or near \"{}\"", t.text)).at(t.pos),
            None => match self.end {
                End::Semicolon(p) => Error::syntax("syntax error at or near \";\"").at(p),
                End::Input(p) => Error::syntax("syntax error at end of input").at(p),
            },
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, w: &str) -> Result<()> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(x)) if x == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A column identifier: an unreserved word or a quoted identifier.
    fn col_id(&mut self) -> Result<String> {
        match self.peek() {
            Some(Tok::Word(w)) if !RESERVED.contains(&w.as_str()) => {
                let w = w.clone();
                self.i += 1;
                Ok(w)
            }
            Some(Tok::Quoted(q)) => {
                let q = q.clone();
                self.i += 1;
                Ok(q)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn statement(&mut self) -> Result<Stmt> {
        let Some(Tok::Word(w)) = self.peek() else { return Err(self.unexpected()) };
        let w = w.clone();
        self.i += 1;
        match w.as_str() {
            "listen" => Ok(Stmt::Listen(self.col_id()?)),
            "unlisten" => {
                if self.eat_op("*") {
                    Ok(Stmt::Unlisten(None))
                } else {
                    Ok(Stmt::Unlisten(Some(self.col_id()?)))
                }
            }
            "notify" => {
                let channel = self.col_id()?;
                let payload = if self.eat_op(",") {
                    match self.peek() {
                        Some(Tok::Str(s)) => {
                            let s = s.clone();
                            self.i += 1;
                            Some(s)
                        }
                        _ => return Err(self.unexpected()),
                    }
                } else {
                    None
                };
                Ok(Stmt::Notify { channel, payload })
            }
            "begin" => {
                let _ = self.eat_word("work") || self.eat_word("transaction");
                self.transaction_modes()?;
                Ok(Stmt::Begin { start: false })
            }
            "start" => {
                self.expect_word("transaction")?;
                self.transaction_modes()?;
                Ok(Stmt::Begin { start: true })
            }
            "commit" if self.eat_word("prepared") => Ok(Stmt::FinishPrepared { commit: true, gid: self.string()? }),
            "rollback" if self.eat_word("prepared") => Ok(Stmt::FinishPrepared { commit: false, gid: self.string()? }),
            "prepare" => {
                self.expect_word("transaction")?;
                Ok(Stmt::Prepare(self.string()?))
            }
            "commit" | "end" => {
                let _ = self.eat_word("work") || self.eat_word("transaction");
                let chain = self.and_chain()?;
                Ok(Stmt::Commit { chain, end: w == "end" })
            }
            "abort" => {
                let _ = self.eat_word("work") || self.eat_word("transaction");
                Ok(Stmt::Rollback { chain: self.and_chain()? })
            }
            "rollback" => {
                let _ = self.eat_word("work") || self.eat_word("transaction");
                if self.eat_word("to") {
                    self.eat_word("savepoint");
                    return Ok(Stmt::RollbackTo(self.col_id()?));
                }
                Ok(Stmt::Rollback { chain: self.and_chain()? })
            }
            "savepoint" => Ok(Stmt::Savepoint(self.col_id()?)),
            "release" => {
                self.eat_word("savepoint");
                Ok(Stmt::Release(self.col_id()?))
            }
            "discard" => {
                self.expect_word("all")?;
                Ok(Stmt::DiscardAll)
            }
            "select" => {
                let mut items = vec![self.select_item()?];
                while self.eat_op(",") {
                    items.push(self.select_item()?);
                }
                Ok(Stmt::Select(items))
            }
            _ => {
                self.i -= 1;
                Err(self.unexpected())
            }
        }
    }

    /// A string literal.
    fn string(&mut self) -> Result<String> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn and_chain(&mut self) -> Result<bool> {
        if !self.eat_word("and") {
            return Ok(false);
        }
        let no = self.eat_word("no");
        self.expect_word("chain")?;
        Ok(!no)
    }

    /// `ISOLATION LEVEL …`, `READ ONLY|WRITE`, `[NOT] DEFERRABLE`, optionally comma-separated.
    /// Accepted and ignored: hark's transactions have one isolation behaviour (R19).
    fn transaction_modes(&mut self) -> Result<()> {
        let mut first = true;
        loop {
            if !first {
                self.eat_op(",");
            }
            if self.eat_word("isolation") {
                self.expect_word("level")?;
                if self.eat_word("serializable") {
                } else if self.eat_word("repeatable") {
                    self.expect_word("read")?;
                } else if self.eat_word("read") {
                    if !(self.eat_word("committed") || self.eat_word("uncommitted")) {
                        return Err(self.unexpected());
                    }
                } else {
                    return Err(self.unexpected());
                }
            } else if self.eat_word("read") {
                if !(self.eat_word("only") || self.eat_word("write")) {
                    return Err(self.unexpected());
                }
            } else if self.eat_word("not") {
                self.expect_word("deferrable")?;
            } else if self.eat_word("deferrable") {
            } else {
                return if first || self.i >= self.toks.len() { Ok(()) } else { Err(self.unexpected()) };
            }
            first = false;
        }
    }

    fn select_item(&mut self) -> Result<SelectItem> {
        let expr = self.expr()?;
        let alias = if self.eat_word("as") {
            Some(match self.peek() {
                Some(Tok::Word(w)) => {
                    let w = w.clone();
                    self.i += 1;
                    w
                }
                Some(Tok::Quoted(q)) => {
                    let q = q.clone();
                    self.i += 1;
                    q
                }
                _ => return Err(self.unexpected()),
            })
        } else if matches!(self.peek(), Some(Tok::Quoted(_)))
            || matches!(self.peek(), Some(Tok::Word(w)) if !RESERVED.contains(&w.as_str()))
        {
            Some(self.col_id()?)
        } else {
            None
        };
        Ok(SelectItem { expr, alias })
    }

    fn expr(&mut self) -> Result<Expr> {
        let mut left = self.cast_expr()?;
        while let Some(t) = self.toks.get(self.i) {
            if t.tok != Tok::Op("||".into()) {
                break;
            }
            let pos = t.pos;
            self.i += 1;
            let right = self.cast_expr()?;
            left = Expr::Concat(Box::new(left), Box::new(right), pos);
        }
        Ok(left)
    }

    fn cast_expr(&mut self) -> Result<Expr> {
        let operand_pos = self.toks.get(self.i).map_or(self.end.pos(), |t| t.pos);
        let mut e = self.primary()?;
        while let Some(t) = self.toks.get(self.i) {
            if t.tok != Tok::Op("::".into()) {
                break;
            }
            let op_pos = t.pos;
            self.i += 1;
            let pos = self.toks.get(self.i).map_or(self.end.pos(), |t| t.pos);
            let mut ty = match self.peek() {
                Some(Tok::Word(w)) => w.clone(),
                Some(Tok::Quoted(q)) => q.clone(),
                _ => return Err(self.unexpected()),
            };
            self.i += 1;
            if ty == "double" {
                self.expect_word("precision")?;
                ty = "double precision".into();
            } else if ty == "character" && self.eat_word("varying") {
                ty = "character varying".into();
            }
            e = Expr::Cast(Box::new(e), ty, pos, operand_pos, op_pos);
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr> {
        let Some(t) = self.toks.get(self.i) else { return Err(self.unexpected()) };
        let pos = t.pos;
        let e = match &t.tok {
            Tok::Str(s) => Expr::Str(s.clone()),
            Tok::Int(s) => Expr::Int(s.clone()),
            Tok::Num(s) => Expr::Num(s.clone()),
            Tok::Op(o) if o == "(" => {
                self.i += 1;
                let e = self.expr()?;
                if !self.eat_op(")") {
                    return Err(self.unexpected());
                }
                return Ok(e);
            }
            Tok::Op(o) if o == "-" => {
                self.i += 1;
                return match self.primary()? {
                    Expr::Int(s) => Ok(Expr::Int(format!("-{s}"))),
                    Expr::Num(s) => Ok(Expr::Num(format!("-{s}"))),
                    _ => {
                        self.i -= 1;
                        Err(self.unexpected())
                    }
                };
            }
            Tok::Word(w) if w == "null" => Expr::Null,
            Tok::Word(w) if w == "true" => Expr::Bool(true),
            Tok::Word(w) if w == "false" => Expr::Bool(false),
            Tok::Word(w) | Tok::Quoted(w) => {
                let name = w.clone();
                let reserved = matches!(&t.tok, Tok::Word(_)) && RESERVED.contains(&name.as_str());
                self.i += 1;
                if reserved || !self.eat_op("(") {
                    self.i -= 1;
                    return Err(if reserved { self.unexpected() } else { column_error(&name, pos) });
                }
                let mut args = Vec::new();
                if !self.eat_op(")") {
                    loop {
                        args.push(self.expr()?);
                        if self.eat_op(")") {
                            break;
                        }
                        if !self.eat_op(",") {
                            return Err(self.unexpected());
                        }
                    }
                }
                return Ok(Expr::Call { name, args, pos });
            }
            _ => return Err(self.unexpected()),
        };
        self.i += 1;
        Ok(e)
    }
}

/// A bare name in a `SELECT` without `FROM`: PostgreSQL's `column "x" does not exist`.
fn column_error(name: &str, pos: usize) -> Error {
    Error::new(crate::error::ErrorKind::Syntax, "42703", format!("column \"{name}\" does not exist")).at(pos)
}
