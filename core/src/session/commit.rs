//! The commit of one transaction (PostgreSQL's PreCommit_Notify, AtCommit_Notify and
//! SignalBackends, in that order).

use super::txn::Txn;
use super::Connection;
use crate::error::Result;
use crate::layout::{bucket_of, channel_hash, BUCKET_COUNT};
use crate::queue::pattern::channel_prefix_bucket;
use crate::queue::{set_bits, AppendOutcome};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl Connection {
    pub(crate) fn commit_txn(&mut self, txn: &Txn) -> Result<()> {
        if txn.is_empty() {
            return Ok(());
        }
        if txn.actions.is_empty() {
            return self.publish(txn);
        }
        let q = self.queue.clone();
        let new_channels = txn.final_channels(&self.channels);
        let new_buckets = buckets(&new_channels);
        let old_buckets = buckets(&self.channels);

        // 1. Stage the listen changes before appending (R11): a new listener starts at the head
        //    as it is now, so it sees this transaction's own notifications and every later one;
        //    channels being added already count as interest (no missed wake-up in between).
        //    The exact channel list (queue/channels.rs) holds old and new channels until the end.
        let mut registered_now = false;
        let added: Vec<usize> = new_buckets.difference(&old_buckets).copied().collect();
        if !new_channels.is_empty() {
            match self.rx.slot {
                None => {
                    self.rx.bind()?;
                    let all: Vec<usize> = new_buckets.iter().copied().collect();
                    let (slot, _start) = q.register(
                        self.lock_raw(),
                        self.rx.sock_id(),
                        self.backend_pid(),
                        &all,
                        &hashes(&new_channels),
                        &new_channels.iter().map(String::as_str).collect::<Vec<_>>(),
                    )?;
                    self.rx.slot = Some(slot);
                    registered_now = true;
                    self.listened_ever = true;
                }
                Some(slot) => {
                    q.add_buckets(slot, &added);
                    let mut both = hashes(&self.channels);
                    both.extend(hashes(&new_channels));
                    both.sort_unstable();
                    both.dedup();
                    let mut names: Vec<&str> = self.channels.iter().map(String::as_str).collect();
                    names.extend(
                        new_channels.iter().map(String::as_str).filter(|c| !self.channels.iter().any(|o| o == c)),
                    );
                    q.write_channels(slot, &both, "", &names);
                }
            }
        }

        // 2. Append the notifications; a failure (queue full, disk full) undoes the staging.
        let mut outcome = None;
        if txn.has_notifies() {
            match self.append(txn) {
                Ok(o) => outcome = Some(o),
                Err(e) => {
                    if let Some(slot) = self.rx.slot {
                        if registered_now {
                            q.unregister(slot, self.lock_raw());
                            self.rx.slot = None;
                        } else {
                            q.remove_buckets(slot, &added);
                            let names: Vec<&str> = self.channels.iter().map(String::as_str).collect();
                            q.write_channels(slot, &hashes(&self.channels), "", &names);
                        }
                    }
                    return Err(e);
                }
            }
        }

        // 3. Committed: apply the listen changes.
        if let Some(slot) = self.rx.slot {
            if new_channels.is_empty() {
                q.unregister(slot, self.lock_raw());
                self.rx.slot = None;
            } else {
                let dropped: Vec<usize> = old_buckets.difference(&new_buckets).copied().collect();
                q.remove_buckets(slot, &dropped);
                let names: Vec<&str> = new_channels.iter().map(String::as_str).collect();
                q.write_channels(slot, &hashes(&new_channels), "", &names);
                q.slot(slot).channels.store(new_channels.len() as u32, Ordering::SeqCst);
            }
        }
        self.rx.channel_set = new_channels.iter().map(|c| c.as_bytes().to_vec()).collect();
        self.channels = new_channels;

        // 4. Wake the listeners that may care; then let the tail move if a segment was filled.
        if let Some(o) = outcome {
            self.after_append(o, txn)?;
        }
        // The slot changes above went to a control file truncated under its mapping?
        q.check_damage(None)
    }

    /// The commit of a transaction that only notified (the common case): append, then wake.
    fn publish(&mut self, txn: &Txn) -> Result<()> {
        let o = self.append(txn)?;
        self.after_append(o, txn)
    }

    /// Appends the transaction's notifications to the queue.
    fn append(&mut self, txn: &Txn) -> Result<AppendOutcome> {
        let pid = self.backend_pid();
        self.queue.append(&mut self.rx.segs, pid, None, txn.notifies())
    }

    fn after_append(&mut self, o: AppendOutcome, txn: &Txn) -> Result<()> {
        let q = &self.queue;
        let mut it = txn.notifies();
        // Prefix buckets matter only once a pattern subscription exists in this queue.
        let patterns = q.shared().patterns_used.load(Ordering::SeqCst) != 0;
        if it.len() == 1 {
            let c = it.next().expect("one").0;
            let prefix = if patterns { channel_prefix_bucket(c) } else { None };
            q.wake_buckets(&[bucket_of(c)], prefix.as_slice(), patterns, self.rx.slot);
        } else {
            let mut seen = [0u64; BUCKET_COUNT / 64];
            let mut seen_prefix = [0u64; BUCKET_COUNT / 64];
            let mut last: Option<*const u8> = None;
            for (c, _) in it {
                // A run on one channel shares one slice: its bucket is already marked.
                if last == Some(c.as_ptr()) {
                    continue;
                }
                last = Some(c.as_ptr());
                let b = bucket_of(c);
                seen[b / 64] |= 1 << (b % 64);
                if let Some(b) = channel_prefix_bucket(c).filter(|_| patterns) {
                    seen_prefix[b / 64] |= 1 << (b % 64);
                }
            }
            // The marked buckets, from the set bits alone (not a test of each of the 256).
            let set = |seen: &[u64]| -> Vec<usize> {
                seen.iter().enumerate().flat_map(|(w, &word)| set_bits(word).map(move |bit| w * 64 + bit)).collect()
            };
            q.wake_buckets(&set(&seen), &set(&seen_prefix), patterns, self.rx.slot);
        }
        debug_assert!(o.end > o.start);
        if o.crossed_segment {
            if let Some(n) = super::receiver::truncate_after_the_fact(q) {
                self.notice(n);
            }
        }
        if let Some(w) = o.warning {
            self.notice(w);
        }
        Ok(())
    }
}

fn hashes(channels: &[String]) -> Vec<u64> {
    channels.iter().map(|c| channel_hash(c.as_bytes())).collect()
}

fn buckets(channels: &[String]) -> HashSet<usize> {
    channels.iter().map(|c| bucket_of(c.as_bytes())).collect()
}
