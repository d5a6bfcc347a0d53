//! A session's transaction block (the part of PostgreSQL's `xact.c` that LISTEN/NOTIFY see): the
//! only code that changes the block's state, and the pending work of the open transaction.
//!
//! ```text
//!            BEGIN                          error
//!   Idle ───────────────▶ Explicit ─────────────────▶ Failed
//!    │ ▲                     │  ▲ COMMIT AND CHAIN      │ ROLLBACK [AND CHAIN] / COMMIT
//!    │ │ COMMIT, ROLLBACK    │  └──────────┘            │ (which rolls back)
//!    │ └─────────────────────┴────────────────────────────┘
//!    │ a statement outside a block, or several in one text
//!    ▼
//!  Implicit ── ends after the statement (or the text): commits, or aborts on an error
//! ```
//!
//! Committing needs the queue, so [`Block::take_for_commit`] hands the pending work to the
//! session (`commit.rs`), which gives the buffers back afterwards for the next transaction.

use super::txn::Txn;
use super::TransactionStatus;
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum State {
    #[default]
    Idle,
    /// Several statements of one `execute` call, or one statement, outside a block
    /// (PostgreSQL's implicit transaction).
    Implicit,
    Explicit,
    Failed,
}

/// What BEGIN did.
pub(crate) enum Began {
    Began,
    /// Already in a block: PostgreSQL only warns.
    AlreadyInBlock,
}

#[derive(Default)]
pub(crate) struct Block {
    state: State,
    /// Pending notifications and listen actions, with savepoints.
    pub(crate) txn: Txn,
}

impl Block {
    pub fn state(&self) -> State {
        self.state
    }

    /// Outside any transaction: notifications may be delivered now (R13).
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    pub fn status(&self) -> TransactionStatus {
        match self.state {
            State::Idle | State::Implicit => TransactionStatus::Idle,
            State::Explicit => TransactionStatus::InTrans,
            State::Failed => TransactionStatus::InError,
        }
    }

    /// `BEGIN`.
    pub fn begin(&mut self) -> Result<Began> {
        match self.state {
            State::Idle | State::Implicit => {
                self.state = State::Explicit;
                Ok(Began::Began)
            }
            State::Explicit => Ok(Began::AlreadyInBlock),
            State::Failed => Err(Error::aborted_block()),
        }
    }

    /// Before a statement that is not transaction control: refused in a failed block; outside
    /// a block it opens an implicit one, and `true` says the caller must end it after the
    /// statement (autocommit).
    pub fn enter_statement(&mut self) -> Result<bool> {
        match self.state {
            State::Failed => Err(Error::aborted_block()),
            State::Explicit | State::Implicit => Ok(false),
            State::Idle => {
                self.state = State::Implicit;
                Ok(true)
            }
        }
    }

    /// Several statements in one text run as one implicit transaction.
    pub fn start_implicit(&mut self) {
        if self.state == State::Idle {
            self.state = State::Implicit;
        }
    }

    /// An error inside a transaction: an explicit block becomes failed, an implicit one ends.
    pub fn fail(&mut self) {
        match self.state {
            State::Explicit => self.state = State::Failed,
            State::Implicit => self.abort(),
            State::Idle | State::Failed => {}
        }
    }

    /// Ends the transaction without effect (ROLLBACK, or an error outside a block).
    pub fn abort(&mut self) {
        self.txn.clear();
        self.state = State::Idle;
    }

    /// `ROLLBACK AND CHAIN`: ends the transaction without effect and opens a new block.
    pub fn abort_and_chain(&mut self) {
        self.abort();
        self.state = State::Explicit;
    }

    /// Leaves the block and hands its pending work over to be committed. Give the (cleared)
    /// buffers back with [`Block::give_back`].
    pub fn take_for_commit(&mut self) -> Txn {
        self.state = State::Idle;
        std::mem::take(&mut self.txn)
    }

    /// Takes back the buffers of a committed (or failed) transaction, cleared.
    pub fn give_back(&mut self, mut txn: Txn) {
        txn.clear();
        self.txn = txn;
    }

    /// `COMMIT AND CHAIN`, after the commit: a new block, with the same characteristics.
    pub fn chain(&mut self) {
        self.state = State::Explicit;
    }

    /// Refuses a statement that only a block may run (SAVEPOINT, RELEASE).
    pub fn in_explicit(&self, what: &str) -> Result<()> {
        match self.state {
            State::Explicit => Ok(()),
            State::Failed => Err(Error::aborted_block()),
            State::Idle | State::Implicit => Err(not_in_block(what)),
        }
    }

    /// `SAVEPOINT name` (only inside a block).
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.in_explicit("SAVEPOINT")?;
        self.txn.savepoint(name);
        Ok(())
    }

    /// `RELEASE SAVEPOINT name`: its work passes to the enclosing level.
    pub fn release(&mut self, name: &str) -> Result<()> {
        self.in_explicit("RELEASE SAVEPOINT")?;
        self.txn.release(name).inspect_err(|_| self.state = State::Failed)
    }

    /// `ROLLBACK TO SAVEPOINT name`: drops what was done since; also leaves a failed state.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        match self.state {
            State::Explicit | State::Failed => {}
            State::Idle | State::Implicit => return Err(not_in_block("ROLLBACK TO SAVEPOINT")),
        }
        match self.txn.rollback_to(name) {
            Ok(()) => {
                self.state = State::Explicit;
                Ok(())
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }
}

pub(crate) fn not_in_block(what: &str) -> Error {
    Error::new(ErrorKind::TransactionState, "25P01", format!("{what} can only be used in transaction blocks"))
}
