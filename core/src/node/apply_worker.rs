//! Record changes applied on a second thread while a receive batch or an
//! import goes on.
//!
//! Receiving an entry is two kinds of work: the ledger's (decode, look up
//! keys and chains, check the signature, open both seals, store the entry)
//! and Automerge's (parse the change, apply it to the patient's document).
//! They take about as long as each other, and only the ledger's needs the
//! store. So for a batch of many messages, [`Node::receive`] applies record
//! changes *speculatively*: the ledger loop hands each opened change to an
//! [`ApplyWorker`] thread that owns the documents it was given, and goes on
//! with the next entry as if the change had applied.
//!
//! The speculation is checked before anything is kept. Every document goes
//! back to the node ([`Node::settle_docs`]) before the batch's held entries
//! are retried, before rules run, before documents are saved, and before
//! any other code reads or drops a document (an erasure, an export). If any
//! change failed to apply (missing dependencies, a wrong actor, a change
//! Automerge refuses), the whole batch transaction is rolled back and the
//! batch is received again one entry at a time, so the outcome (accepted,
//! held, rejected, and why) is exactly that of the sequential path. In relay
//! order changes arrive after what they depend on, so the redo is rare.
//!
//! An import works the same way without speculating: the worker maps each
//! patient's resources into its document ([`RecordDoc::upsert`]) and sends
//! the change back, while the node seals, signs and stores the changes that
//! came back before it. The entries are written in the same order, with the
//! same content, as when one thread did both.
//!
//! [`Node::receive`]: super::Node::receive
//! [`Node::settle_docs`]: super::Node::settle_docs

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{NetworkId, Node};
use crate::entry::AuthorId;
use crate::record::doc::{EditRecordError, RecordDoc};
use crate::record::fhir::Resource;
use crate::store::StoreError;

/// A document's key in [`super::Node`]'s caches: (network id, record id).
pub(super) type DocKey = (Vec<u8>, String);

/// Batches with at least this many messages are received speculatively.
/// Below it, a thread is not worth starting.
pub(super) const SPECULATE_MIN_MESSAGES: usize = 8;

enum Job {
    /// A document the worker applies to from now on.
    Doc(DocKey, Box<RecordDoc>),
    /// Apply change bytes made by actor `author` to a document given before.
    Apply(DocKey, Vec<u8>, [u8; 32]),
    /// Write resources into a document given before, as one change made at
    /// the time given (ms); the result goes back on the upserted channel.
    Upsert(DocKey, Vec<Resource>, i64),
}

/// One upsert's result: the patient and the change's bytes (`None`: nothing
/// changed).
pub(super) type Upserted = (String, Result<Option<Vec<u8>>, EditRecordError>);

/// What the worker gives back when it is done.
struct Applied {
    docs: HashMap<DocKey, RecordDoc>,
    /// Some change did not apply (or was for a document never given).
    failed: bool,
}

/// The thread applying record changes for the batch in progress.
pub(super) struct ApplyWorker {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<Applied>,
    /// Documents now on the worker.
    held: HashSet<DocKey>,
}

impl ApplyWorker {
    /// Start the thread; `None` if the system cannot start one (the caller
    /// then applies on its own thread).
    pub(super) fn start() -> Option<Self> {
        Self::spawn(None)
    }

    /// Start the thread for upserts; their results arrive on the receiver,
    /// in the order they were queued.
    pub(super) fn start_upserts() -> Option<(Self, mpsc::Receiver<Upserted>)> {
        let (results, upserted) = mpsc::channel();
        Some((Self::spawn(Some(results))?, upserted))
    }

    fn spawn(results: Option<mpsc::Sender<Upserted>>) -> Option<Self> {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("careledger-apply".into())
            .spawn(move || run(queue, results))
            .ok()?;
        Some(Self {
            jobs,
            thread,
            held: HashSet::new(),
        })
    }

    /// Whether the worker has this document.
    pub(super) fn holds(&self, key: &DocKey) -> bool {
        self.held.contains(key)
    }

    /// Hand a document over. Returns it if the worker is gone.
    pub(super) fn give(&mut self, key: DocKey, doc: RecordDoc) -> Result<(), Box<RecordDoc>> {
        match self.jobs.send(Job::Doc(key.clone(), Box::new(doc))) {
            Ok(()) => {
                self.held.insert(key);
                Ok(())
            }
            Err(mpsc::SendError(job)) => match job {
                Job::Doc(_, doc) => Err(doc),
                Job::Apply(..) | Job::Upsert(..) => unreachable!("sent a document"),
            },
        }
    }

    /// Queue a change for a document the worker holds. `false` if the
    /// worker is gone (its result will say it failed).
    pub(super) fn apply(&self, key: DocKey, change: Vec<u8>, author: [u8; 32]) -> bool {
        self.jobs.send(Job::Apply(key, change, author)).is_ok()
    }

    /// Queue an upsert into a document the worker holds. `false` if the
    /// worker is gone (its result never comes).
    pub(super) fn upsert(&self, key: DocKey, resources: Vec<Resource>, time_ms: i64) -> bool {
        self.jobs.send(Job::Upsert(key, resources, time_ms)).is_ok()
    }

    /// Wait for every queued change; the documents, and whether all applied.
    /// A worker that panicked counts as failed, and its documents are lost
    /// (the caller rolls back and reloads them from the store).
    pub(super) fn finish(self) -> (HashMap<DocKey, RecordDoc>, bool) {
        drop(self.jobs);
        match self.thread.join() {
            Ok(applied) => (applied.docs, applied.failed),
            Err(_) => (HashMap::new(), true),
        }
    }
}

impl Node {
    /// Take every document back from the apply worker, if one runs, and
    /// note whether all its changes applied. Everything that reads, saves or
    /// drops a cached document calls this first.
    pub(super) fn settle_docs(&mut self) {
        if let Some(worker) = self.apply_worker.take() {
            let (docs, failed) = worker.finish();
            self.docs.extend(docs);
            self.speculation_failed |= failed;
        }
    }

    /// During a speculative batch, hand `change` (by `author`) to the apply
    /// worker instead of applying it here: `None`. `Some(change)`: not
    /// speculating (or no thread could be started), apply it now.
    pub(super) fn apply_speculatively(
        &mut self,
        network: &NetworkId,
        record: &str,
        change: Vec<u8>,
        author: &AuthorId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.speculate {
            return Ok(Some(change));
        }
        let worker = match &mut self.apply_worker {
            Some(worker) => worker,
            None => match ApplyWorker::start() {
                Some(worker) => self.apply_worker.insert(worker),
                None => {
                    self.speculate = false;
                    return Ok(Some(change));
                }
            },
        };
        let key: DocKey = (network.0.clone(), record.to_owned());
        if !worker.holds(&key) {
            let doc = match self.docs.remove(&key) {
                Some(doc) => doc,
                None => self.load_doc(&key, self.identity.author_id())?,
            };
            let worker = self.apply_worker.as_mut().expect("started above");
            if let Err(doc) = worker.give(key.clone(), doc) {
                // The worker is gone: settling says the batch failed.
                self.docs.insert(key.clone(), *doc);
            }
        }
        let worker = self.apply_worker.as_ref().expect("started above");
        worker.apply(key, change, author.0);
        Ok(None)
    }
}

fn run(queue: mpsc::Receiver<Job>, results: Option<mpsc::Sender<Upserted>>) -> Applied {
    let mut docs: HashMap<DocKey, RecordDoc> = HashMap::new();
    let mut failed = false;
    for job in queue {
        match job {
            Job::Upsert(key, resources, time_ms) => {
                let result = match docs.get_mut(&key) {
                    Some(doc) => doc.upsert(&resources, time_ms),
                    None => {
                        failed = true;
                        continue;
                    }
                };
                // Dropped resources free on this thread, not the node's.
                drop(resources);
                if let Some(results) = &results {
                    failed |= results.send((key.1, result)).is_err();
                }
            }
            Job::Doc(key, doc) => {
                docs.insert(key, *doc);
            }
            // After a failure the batch is redone: skip the rest.
            Job::Apply(..) if failed => {}
            Job::Apply(key, change, author) => {
                failed = match docs.get_mut(&key) {
                    Some(doc) => doc.apply_change_by(&change, &author).is_err(),
                    None => true,
                };
            }
        }
    }
    Applied { docs, failed }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: [u8; 32] = [1; 32];

    /// A worker holding an empty document for "p1", and a change by
    /// [`AUTHOR`] that writes that patient.
    fn worker_with_doc() -> (ApplyWorker, DocKey, Vec<u8>) {
        let patient = crate::record::fhir::parse_ndjson(
            "p.ndjson",
            r#"{"resourceType":"Patient","id":"p1","gender":"female"}"#,
        )
        .expect("resource");
        let change = RecordDoc::new(&AUTHOR)
            .upsert(&patient, 0)
            .expect("upsert")
            .expect("a change");
        let key: DocKey = (vec![9], "p1".into());
        let mut worker = ApplyWorker::start().expect("thread");
        worker
            .give(key.clone(), RecordDoc::new(&[2; 32]))
            .expect("given");
        (worker, key, change)
    }

    fn resources_in(docs: &HashMap<DocKey, RecordDoc>, key: &DocKey) -> usize {
        docs.get(key)
            .expect("returned")
            .resources()
            .expect("resources")
            .len()
    }

    #[test]
    fn applies_changes_and_returns_the_documents() {
        let (worker, key, change) = worker_with_doc();
        assert!(worker.holds(&key));
        assert!(worker.apply(key.clone(), change, AUTHOR));
        let (docs, failed) = worker.finish();
        assert!(!failed);
        assert_eq!(resources_in(&docs, &key), 1);
    }

    #[test]
    fn a_change_that_does_not_apply_fails_the_batch() {
        let (worker, key, change) = worker_with_doc();
        // Signed by someone else than the change's actor.
        worker.apply(key.clone(), change.clone(), [3; 32]);
        // Later changes are skipped.
        worker.apply(key.clone(), change, AUTHOR);
        let (docs, failed) = worker.finish();
        assert!(failed);
        assert_eq!(resources_in(&docs, &key), 0);
    }

    #[test]
    fn a_change_for_a_document_never_given_fails() {
        let (worker, key, change) = worker_with_doc();
        worker.apply((vec![8], key.1), change, AUTHOR);
        let (_, failed) = worker.finish();
        assert!(failed);
    }
}
