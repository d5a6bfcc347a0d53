//! The statements of a session, each run as PostgreSQL runs one statement: LISTEN, UNLISTEN and
//! NOTIFY record their work in the transaction block; the transaction-control statements move the
//! block (`block.rs`) and commit through `commit.rs`. The SQL executor (`crate::sql`) runs the
//! same methods for the statements it parses.

use super::block::{Began, State};
use super::{Connection, ListenAction};
use crate::error::{Error, ErrorKind, Notice, Result, Severity};
use crate::layout::MAX_CHANNEL_LEN;

impl Connection {
    /// `LISTEN channel`, with the channel taken verbatim (no case folding). Takes effect at commit.
    pub fn listen(&mut self, channel: &str) -> Result<()> {
        // Checked inside the statement: an invalid argument fails an open block, as in PostgreSQL.
        self.statement(|c| {
            check_channel(channel)?;
            if let Some(name) = c.subscription() {
                return Err(Error::new(
                    ErrorKind::TransactionState,
                    "55000",
                    format!("cannot LISTEN in a session attached to subscription \"{name}\""),
                )
                .with_hint("Listen from another connection, or add the channel to the subscription."));
            }
            c.block.txn.actions.push(ListenAction::Listen(channel.to_owned()));
            Ok(())
        })
    }

    /// `UNLISTEN channel`. Takes effect at commit; unknown channels are ignored (R10).
    pub fn unlisten(&mut self, channel: &str) -> Result<()> {
        // Checked inside the statement: an invalid argument fails an open block, as in PostgreSQL.
        self.statement(|c| {
            check_channel(channel)?;
            c.record_unlisten(ListenAction::Unlisten(channel.to_owned()));
            Ok(())
        })
    }

    /// `UNLISTEN *`.
    pub fn unlisten_all(&mut self) -> Result<()> {
        self.statement(|c| {
            c.record_unlisten(ListenAction::UnlistenAll);
            Ok(())
        })
    }

    /// Records an UNLISTEN, except, as PostgreSQL, in a session that never committed a LISTEN and
    /// has no other listen action pending: it could not be listening, so nothing is recorded (the
    /// difference shows in `PREPARE TRANSACTION`, R25).
    pub(crate) fn record_unlisten(&mut self, a: ListenAction) {
        if self.listened_ever || !self.block.txn.actions.is_empty() {
            self.block.txn.actions.push(a);
        }
    }

    /// `SELECT pg_notify(channel, payload)`: queued now, visible to listeners at commit.
    pub fn notify(&mut self, channel: &str, payload: &str) -> Result<()> {
        self.statement(|c| {
            c.check_notify(channel, payload)?;
            c.block.txn.notify(channel, payload);
            Ok(())
        })
    }

    /// PostgreSQL's checks on `pg_notify`'s arguments, in its order (R2, R3).
    pub(crate) fn check_notify(&self, channel: &str, payload: &str) -> Result<()> {
        check_text(channel)?;
        check_text(payload)?;
        if channel.is_empty() {
            return Err(Error::invalid("channel name cannot be empty"));
        }
        if channel.len() > MAX_CHANNEL_LEN {
            return Err(Error::invalid("channel name too long"));
        }
        if payload.len() > self.queue.max_payload() {
            return Err(Error::invalid("payload string too long"));
        }
        Ok(())
    }

    /// `BEGIN`. Inside a block it only warns, as PostgreSQL does.
    pub fn begin(&mut self) -> Result<()> {
        self.check_usable()?;
        if let Began::AlreadyInBlock = self.block.begin()? {
            self.notice(Notice::new(Severity::Warning, "25001", "there is already a transaction in progress"));
        }
        Ok(())
    }

    /// `COMMIT`. Outside a block it only warns. In a failed block it rolls back and returns a
    /// `TransactionState` error, so that a caller of this method cannot mistake it for a commit
    /// (through `execute`, `COMMIT` reports the `ROLLBACK` tag instead, as PostgreSQL does).
    pub fn commit(&mut self) -> Result<()> {
        self.check_usable()?;
        match self.block.state() {
            State::Idle => {
                self.warn_no_transaction();
                Ok(())
            }
            State::Failed => {
                self.block.abort();
                Err(Error::new(
                    ErrorKind::TransactionState,
                    "25P02",
                    "current transaction was aborted by an earlier error; COMMIT rolled it back",
                ))
            }
            State::Implicit | State::Explicit => self.end_txn(),
        }
    }

    /// `ROLLBACK`. Outside a block it only warns.
    pub fn rollback(&mut self) -> Result<()> {
        self.check_usable()?;
        if self.block.is_idle() {
            self.warn_no_transaction();
            return Ok(());
        }
        self.block.abort();
        self.deliver()
    }

    /// `SAVEPOINT name` (only inside a block).
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        self.block.savepoint(name)
    }

    /// `RELEASE SAVEPOINT name`: its notifications and listen actions pass to the enclosing level.
    pub fn release(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        self.block.release(name)
    }

    /// `ROLLBACK TO SAVEPOINT name`: drops what was done since; also leaves a failed state.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        self.block.rollback_to(name)
    }

    /// Runs one non-transaction-control statement: in a block it joins the transaction (an error
    /// fails the block); outside one it is its own transaction (autocommit).
    pub(crate) fn statement<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.check_usable()?;
        let autocommit = self.block.enter_statement()?;
        let v = f(self).inspect_err(|_| self.block.fail())?;
        if autocommit {
            self.end_txn()?;
        }
        Ok(v)
    }

    /// Commits and, back outside any transaction, delivers what is waiting (R13).
    pub(crate) fn end_txn(&mut self) -> Result<()> {
        self.commit_taken()?;
        self.deliver()
    }

    /// Commits the pending transaction and leaves the block; its (cleared) buffers are kept for
    /// the next one.
    pub(crate) fn commit_taken(&mut self) -> Result<()> {
        let txn = self.block.take_for_commit();
        let r = self.commit_txn(&txn);
        self.block.give_back(txn);
        r
    }
}

/// Strings in the queue are C strings in UTF-8, as PostgreSQL's text: no NUL byte (R3).
fn check_text(s: &str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "22021",
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
    }
    Ok(())
}

/// A channel given to the direct API: verbatim, 1–63 bytes.
pub(crate) fn check_channel(channel: &str) -> Result<()> {
    check_text(channel)?;
    if channel.is_empty() {
        return Err(Error::invalid("channel name cannot be empty"));
    }
    if channel.len() > MAX_CHANNEL_LEN {
        return Err(Error::invalid("channel name too long"));
    }
    Ok(())
}
