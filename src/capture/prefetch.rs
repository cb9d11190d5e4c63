//! Read a capture file on a second thread, so that libpcap's reading (and
//! whatever per-frame work the caller hands over, such as decoding) runs side
//! by side with the analysis on another core. Results travel in batches over
//! a bounded channel and come back empty to be reused, so memory stays flat
//! whatever the file size.
//!
//! A stream (standard input, a pipe) may go quiet with a batch half full and
//! the reader waiting in `read`: its batch is filled under a lock, and the
//! analysis takes it as it is after [`STREAM_WAIT`] without a full one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{CaptureError, FileCapture, Frame};

/// Items per batch: large enough that the channel costs nothing per frame.
const BATCH: usize = 2048;
/// Batches in flight: enough to ride out a slow moment on either side.
const IN_FLIGHT: usize = 4;
/// How often the analysis looks at the stop flag while it waits, and how
/// late a quiet stream's last frames are handed on at most.
const STREAM_WAIT: Duration = Duration::from_millis(50);

/// What the reader thread made of a run of frames: one item per frame, and
/// any bytes the items refer to (by offset) in `data`.
#[derive(Debug)]
pub struct Batch<T> {
    pub items: Vec<T>,
    pub data: Vec<u8>,
}

impl<T> Batch<T> {
    fn new() -> Batch<T> {
        Batch {
            items: Vec::with_capacity(BATCH),
            data: Vec::new(),
        }
    }
}

enum Message<T> {
    Batch(Batch<T>),
    End(Result<(), CaptureError>),
}

/// The batch being filled, shared with the analysis only for a stream.
type Filling<T> = Arc<Mutex<Batch<T>>>;

/// A capture being read ahead, each frame turned into a `T` on the reader
/// thread.
pub struct Prefetch<T: Send + 'static> {
    rx: Option<Receiver<Message<T>>>,
    recycle: SyncSender<Batch<T>>,
    reader: Option<JoinHandle<()>>,
    filling: Option<Filling<T>>,
}

impl<T: Send + 'static> Prefetch<T> {
    pub fn start<F>(mut cap: FileCapture, mut each: F) -> Prefetch<T>
    where
        F: FnMut(Frame<'_>, &mut Vec<u8>) -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
        let (recycle, empties) = mpsc::sync_channel(IN_FLIGHT + 1);
        let filling = cap.is_stream().then(|| Arc::new(Mutex::new(Batch::new())));
        let shared = filling.clone();
        let reader = thread::Builder::new()
            .name("kaprobe-read".into())
            .spawn(move || match shared {
                Some(batch) => read_stream(&mut cap, &mut each, &tx, &empties, &batch),
                None => read_ahead(&mut cap, &mut each, &tx, &empties),
            })
            .expect("spawn the capture reader thread");
        Prefetch {
            rx: Some(rx),
            recycle,
            reader: Some(reader),
            filling,
        }
    }

    /// The next batch; `None` at the end of the file, or once `stop` is set
    /// (the reader is then left behind: it may be waiting on a quiet pipe).
    /// A read error comes after every frame read before it.
    pub fn next_batch(&mut self, stop: &AtomicBool) -> Option<Result<Batch<T>, CaptureError>> {
        loop {
            if stop.load(Ordering::Relaxed) {
                self.abandon();
                return None;
            }
            let message = match self.rx.as_ref()?.recv_timeout(STREAM_WAIT) {
                Ok(m) => m,
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => match self.partial() {
                    Some(m) => m,
                    None => continue,
                },
            };
            return match message {
                Message::Batch(b) => Some(Ok(b)),
                Message::End(Ok(())) => None,
                Message::End(Err(e)) => Some(Err(e)),
            };
        }
    }

    /// A quiet stream's half-filled batch. Under the lock the reader adds
    /// nothing, and it sends a full batch before it fills the next: so a
    /// batch already in the channel is older than what is being filled.
    fn partial(&self) -> Option<Message<T>> {
        let mut filling = lock(self.filling.as_ref()?);
        match self.rx.as_ref()?.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) if filling.items.is_empty() => None,
            Err(TryRecvError::Empty) => Some(Message::Batch(std::mem::replace(
                &mut *filling,
                Batch::new(),
            ))),
        }
    }

    fn abandon(&mut self) {
        self.rx = None;
        // Dropping the handle detaches the thread; the process ends soon.
        self.reader = None;
    }

    /// Hand a batch back for reuse.
    pub fn recycle(&self, mut batch: Batch<T>) {
        batch.items.clear();
        batch.data.clear();
        let _ = self.recycle.try_send(batch);
    }
}

impl<T: Send + 'static> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Without a receiver the reader's next send fails, which ends it.
        drop(self.rx.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A poisoned lock only means the other side panicked; the batch is whole.
fn lock<T>(batch: &Mutex<Batch<T>>) -> MutexGuard<'_, Batch<T>> {
    batch
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_ahead<T, F>(
    cap: &mut FileCapture,
    each: &mut F,
    tx: &SyncSender<Message<T>>,
    empties: &Receiver<Batch<T>>,
) where
    F: FnMut(Frame<'_>, &mut Vec<u8>) -> T,
{
    let mut batch = Batch::new();
    loop {
        match cap.next_frame() {
            Ok(Some(frame)) => {
                let item = each(frame, &mut batch.data);
                batch.items.push(item);
                if batch.items.len() < BATCH {
                    continue;
                }
                let next = empties.try_recv().unwrap_or_else(|_| Batch::new());
                if tx
                    .send(Message::Batch(std::mem::replace(&mut batch, next)))
                    .is_err()
                {
                    return;
                }
            }
            Ok(None) => return finish(tx, batch, Ok(())),
            Err(e) => return finish(tx, batch, Err(e)),
        }
    }
}

/// As [`read_ahead`], with the batch being filled where the analysis can
/// take it; the lock is never held while reading or sending.
fn read_stream<T, F>(
    cap: &mut FileCapture,
    each: &mut F,
    tx: &SyncSender<Message<T>>,
    empties: &Receiver<Batch<T>>,
    filling: &Mutex<Batch<T>>,
) where
    F: FnMut(Frame<'_>, &mut Vec<u8>) -> T,
{
    loop {
        let end = match cap.next_frame() {
            Ok(Some(frame)) => {
                let mut batch = lock(filling);
                let item = each(frame, &mut batch.data);
                batch.items.push(item);
                if batch.items.len() < BATCH {
                    continue;
                }
                let next = empties.try_recv().unwrap_or_else(|_| Batch::new());
                let full = std::mem::replace(&mut *batch, next);
                drop(batch);
                if tx.send(Message::Batch(full)).is_err() {
                    return;
                }
                continue;
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        let rest = std::mem::replace(&mut *lock(filling), Batch::new());
        return finish(tx, rest, end);
    }
}

fn finish<T>(tx: &SyncSender<Message<T>>, batch: Batch<T>, end: Result<(), CaptureError>) {
    if !batch.items.is_empty() && tx.send(Message::Batch(batch)).is_err() {
        return;
    }
    let _ = tx.send(Message::End(end));
}
