//! The grammar of hark's SQL dialect: PostgreSQL's LISTEN/NOTIFY/UNLISTEN, transaction control
//! (with the two-phase commands, which hark refuses as PostgreSQL does), and `SELECT` of constants
//! and of the notification functions.

use super::lexer::{Tok, Token};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// Nothing but whitespace or comments.
    Empty,
    Listen(String),
    /// `None` for `UNLISTEN *`.
    Unlisten(Option<String>),
    Notify {
        channel: String,
        payload: Option<String>,
    },
    Begin {
        start: bool,
    },
    Commit {
        chain: bool,
        end: bool,
    },
    Rollback {
        chain: bool,
    },
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    Select(Vec<SelectItem>),
    DiscardAll,
    /// `PREPARE TRANSACTION 'gid'`.
    Prepare(String),
    /// `COMMIT PREPARED 'gid'` (true) or `ROLLBACK PREPARED 'gid'` (false).
    FinishPrepared {
        commit: bool,
        gid: String,
    },
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
    /// `$n`, with the position of the `$`.
    Param {
        n: usize,
        pos: usize,
    },
    Call {
        name: String,
        args: Vec<Expr>,
        pos: usize,
    },
    /// `a || b || c …`: the first operand, then each further one with the position of its `||`.
    /// A chain is a flat list, not a tree, so that parsing, evaluating, cloning and dropping a
    /// chain of any length takes no recursion.
    Concat(Box<Expr>, Vec<(Expr, usize)>),
    /// `operand::t1::t2 …`, flat for the same reason.
    Cast(Box<Expr>, CastChain),
}

/// The casts applied in turn to one operand (`x::a::b`), with the operand's position.
#[derive(Debug, Clone, PartialEq)]
pub struct CastChain {
    /// Where the operand is, for the input errors of an untyped literal; `None` for a parameter,
    /// whose value PostgreSQL reads when it is bound, with no position in the statement.
    pub operand_pos: Option<usize>,
    pub casts: Vec<CastTo>,
}

/// One `::type` of a cast chain.
#[derive(Debug, Clone, PartialEq)]
pub struct CastTo {
    pub ty: String,
    /// Where the type name is.
    pub pos: usize,
    /// Where the `::` is.
    pub op_pos: usize,
}

impl CastChain {
    /// The type of the last cast, the one the value ends with.
    pub fn last_type(&self) -> &str {
        &self.casts.last().expect("a cast chain has at least one cast").ty
    }
}

/// How deeply parentheses and function calls may nest in one expression.
///
/// hark runs on whatever thread calls it: Python and Node threads, C threads made with small
/// stacks, musl's 128 KiB default. Parsing and evaluation use explicit stacks on the heap, but
/// the tree an expression parses to is still dropped (and compared, cloned, printed) by
/// recursion, one call per node, and a nesting level makes at most two nodes (a parenthesised
/// `(x || y)::t` is a cast over a chain). Measured on x86-64 in a release build, dropping costs
/// about 64 bytes of stack per node; without a limit 10,000 nested calls needed 630 KiB. At this
/// limit the worst statement (`pg_notify(('c' || …)::text, 'p')` nested 128 times, 384 nodes)
/// runs on a 32 KiB thread stack, a simple one on 16 KiB: that leaves most of a 128 KiB stack to
/// the caller. Long flat chains (`a || b || …`, `x::t::t…`) are lists, not nesting, and have no
/// limit. PostgreSQL accepts deeper nesting (about 4,000 calls and 10,000 parentheses with its
/// 2 MB `max_stack_depth`), then fails with `54001` or with a `42601` "memory exhausted" from its
/// parser; hark fails with `54001` beyond this depth.
pub const MAX_NESTING: usize = 256;

/// The error for an expression nested deeper than [`MAX_NESTING`]: PostgreSQL's SQLSTATE and
/// message, with a hint that says hark's limit (PostgreSQL's names `max_stack_depth`, which
/// hark does not have). Its kind is `Syntax`, the family of statements hark refuses to parse
/// (PostgreSQL's own parser reports nesting too deep for it as a `42601`); the SQLSTATE tells it
/// apart, as it does `42883` or `42704` within the same kind.
pub fn too_deep() -> Error {
    Error::new(ErrorKind::Syntax, "54001", "stack depth limit exceeded").with_hint(format!(
        "Parentheses and function calls may nest at most {MAX_NESTING} levels deep in hark; write the expression with less nesting."
    ))
}

/// PostgreSQL's reserved and type/function-name keywords: not usable as a bare `ColId`.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
    "authorization",
    "binary",
    "collation",
    "concurrently",
    "cross",
    "current_schema",
    "freeze",
    "full",
    "ilike",
    "inner",
    "is",
    "isnull",
    "join",
    "left",
    "like",
    "natural",
    "notnull",
    "outer",
    "overlaps",
    "right",
    "similar",
    "tablesample",
    "verbose",
];

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    /// Where the statement ends: its `;` (PostgreSQL's parser sees it as a token), or the end
    /// of the text, for `at end of input`.
    end: End,
    /// How many parentheses and function calls enclose the current token.
    depth: usize,
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
    let mut p = Parser { toks, i: 0, end, depth: 0 };
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
            Some(t) => {
                let e = Error::syntax(format!("syntax error at or near \"{}\"", t.text)).at(t.pos);
                match super::hint::outside_dialect(self.toks, self.i) {
                    Some(h) => e.with_hint(h),
                    None => e,
                }
            }
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

    /// An expression: operands joined by `||`, each a primary with any minus signs before it
    /// and `::` casts after it; a primary is a constant, `( expr )` or `name( expr, … )`.
    ///
    /// Parsed without recursion: an opened parenthesis or call pushes the chain parsed so far
    /// at its level onto `open` and starts a new one, and its closing pops it back, so nesting
    /// costs heap, not stack. The depth is still limited (MAX_NESTING), because dropping the
    /// tree recurses.
    fn expr(&mut self) -> Result<Expr> {
        let mut open: Vec<Open> = Vec::new();
        let mut chain = Chain::default();
        loop {
            // The start of an operand.
            let operand_pos = self.pos_here();
            let mut minuses = 0usize;
            while self.eat_op("-") {
                minuses += 1;
            }
            let head = Head { operand_pos, minuses };
            let mut operand = if self.op_here("(").is_some() {
                self.enter()?;
                self.i += 1;
                open.push(Open { chain: std::mem::take(&mut chain), head, call: None });
                continue;
            } else if self.is_call() {
                let (name, pos) = self.call_name();
                self.enter()?;
                if !self.eat_op(")") {
                    let call = Some(Call { name, pos, args: Vec::new() });
                    open.push(Open { chain: std::mem::take(&mut chain), head, call });
                    continue;
                }
                self.depth -= 1;
                Expr::Call { name, args: Vec::new(), pos }
            } else {
                self.constant()?
            };
            // The end of an operand: apply its signs and casts, then either go on with the
            // chain after `||` or close the chains that end here.
            let mut head = head;
            loop {
                chain.push(self.finish_operand(operand, head)?);
                if let Some(pos) = self.op_here("||") {
                    self.i += 1;
                    chain.pending = pos;
                    break;
                }
                let done = std::mem::take(&mut chain).into_expr();
                let Some(mut o) = open.pop() else { return Ok(done) };
                match o.call.take() {
                    None => {
                        if !self.eat_op(")") {
                            return Err(self.unexpected());
                        }
                        operand = done;
                    }
                    Some(mut call) => {
                        call.args.push(done);
                        if self.eat_op(",") {
                            o.call = Some(call);
                            open.push(o);
                            break;
                        }
                        if !self.eat_op(")") {
                            return Err(self.unexpected());
                        }
                        operand = Expr::Call { name: call.name, args: call.args, pos: call.pos };
                    }
                }
                self.depth -= 1;
                chain = o.chain;
                head = o.head;
            }
        }
    }

    /// An operand's minus signs (counted: `- - 1` is 1; only numbers can be negated) and casts.
    fn finish_operand(&mut self, e: Expr, head: Head) -> Result<Expr> {
        let e = if head.minuses == 0 { e } else { self.negate(e, head.minuses % 2 == 1)? };
        if self.op_here("::").is_none() {
            return Ok(e);
        }
        self.casts(e, head.operand_pos)
    }

    /// Steps into a parenthesis or a function call's arguments.
    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_NESTING {
            return Err(too_deep());
        }
        self.depth += 1;
        Ok(())
    }

    /// The position of the current token (or of the statement's end).
    fn pos_here(&self) -> usize {
        self.toks.get(self.i).map_or(self.end.pos(), |t| t.pos)
    }

    /// The position of the current token if it is the operator `op`.
    fn op_here(&self, op: &str) -> Option<usize> {
        self.toks.get(self.i).filter(|t| matches!(&t.tok, Tok::Op(x) if x == op)).map(|t| t.pos)
    }

    /// Whether the current token starts a function call: a name that is not a reserved word,
    /// followed by `(`.
    fn is_call(&self) -> bool {
        let name = match self.peek() {
            Some(Tok::Word(w)) => !RESERVED.contains(&w.as_str()),
            Some(Tok::Quoted(_)) => true,
            _ => false,
        };
        name && matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::Op(o)) if o == "(")
    }

    /// Takes a call's name and its `(` (checked by `is_call`).
    fn call_name(&mut self) -> (String, usize) {
        let t = &self.toks[self.i];
        let name = match &t.tok {
            Tok::Word(w) | Tok::Quoted(w) => w.clone(),
            _ => unreachable!("is_call checked for a name"),
        };
        self.i += 2;
        (name, t.pos)
    }

    /// `::type`, as many as follow.
    fn casts(&mut self, e: Expr, operand_pos: usize) -> Result<Expr> {
        let mut casts = Vec::new();
        while let Some(op_pos) = self.op_here("::") {
            self.i += 1;
            let pos = self.pos_here();
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
            casts.push(CastTo { ty, pos, op_pos });
        }
        let operand_pos = if matches!(e, Expr::Param { .. }) { None } else { Some(operand_pos) };
        Ok(Expr::Cast(Box::new(e), CastChain { operand_pos, casts }))
    }

    /// `-number`; the error hark gives for anything else after a minus (it has no other
    /// negative values).
    fn negate(&mut self, e: Expr, negative: bool) -> Result<Expr> {
        // The number may be negative already, from a parenthesis: `-(-1)` is 1.
        let apply = |s: String| match (negative, s.strip_prefix('-')) {
            (false, _) => s,
            (true, Some(positive)) => positive.to_owned(),
            (true, None) => format!("-{s}"),
        };
        match e {
            Expr::Int(s) => Ok(Expr::Int(apply(s))),
            Expr::Num(s) => Ok(Expr::Num(apply(s))),
            _ => {
                self.i -= 1;
                Err(self.unexpected())
            }
        }
    }

    /// A constant, or the error for a token that cannot start an operand.
    fn constant(&mut self) -> Result<Expr> {
        let Some(t) = self.toks.get(self.i) else { return Err(self.unexpected()) };
        let e = match &t.tok {
            Tok::Str(s) => Expr::Str(s.clone()),
            Tok::Int(s) => Expr::Int(s.clone()),
            Tok::Num(s) => Expr::Num(s.clone()),
            Tok::Param(n) => Expr::Param { n: *n, pos: t.pos },
            Tok::Word(w) if w == "null" => Expr::Null,
            Tok::Word(w) if w == "true" => Expr::Bool(true),
            Tok::Word(w) if w == "false" => Expr::Bool(false),
            Tok::Word(w) if !RESERVED.contains(&w.as_str()) => return Err(column_error(w, t.pos)),
            Tok::Quoted(w) => return Err(column_error(w, t.pos)),
            _ => return Err(self.unexpected()),
        };
        self.i += 1;
        Ok(e)
    }
}

/// Operands joined by `||`, as parsed so far at one nesting level.
#[derive(Default)]
struct Chain {
    first: Option<Expr>,
    rest: Vec<(Expr, usize)>,
    /// The position of the `||` before the operand being parsed.
    pending: usize,
}

impl Chain {
    fn push(&mut self, e: Expr) {
        match self.first {
            None => self.first = Some(e),
            Some(_) => self.rest.push((e, self.pending)),
        }
    }
    fn into_expr(self) -> Expr {
        let first = self.first.expect("a chain ends after an operand");
        if self.rest.is_empty() {
            first
        } else {
            Expr::Concat(Box::new(first), self.rest)
        }
    }
}

/// What precedes an operand: where it starts (for a cast's errors) and its minus signs.
#[derive(Clone, Copy)]
struct Head {
    operand_pos: usize,
    minuses: usize,
}

/// A parenthesis or call still open, with the chain of the level around it.
struct Open {
    chain: Chain,
    head: Head,
    /// `None` for a parenthesis.
    call: Option<Call>,
}

struct Call {
    name: String,
    pos: usize,
    args: Vec<Expr>,
}

/// A bare name in a `SELECT` without `FROM`: PostgreSQL's `column "x" does not exist`.
fn column_error(name: &str, pos: usize) -> Error {
    Error::new(ErrorKind::Syntax, "42703", format!("column \"{name}\" does not exist")).at(pos)
}
