//! Read a capture file on a second thread, so that libpcap's reading (and
//! whatever per-frame work the caller hands over, such as decoding) runs side
//! by side with the analysis on another core. Results travel in batches over
//! a bounded channel and come back empty to be reused, so memory stays flat
//! whatever the file size.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use super::{CaptureError, FileCapture, Frame};

/// Items per batch: large enough that the channel costs nothing per frame.
const BATCH: usize = 2048;
/// Batches in flight: enough to ride out a slow moment on either side.
const IN_FLIGHT: usize = 4;

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

/// A capture being read ahead, each frame turned into a `T` on the reader
/// thread.
pub struct Prefetch<T: Send + 'static> {
    rx: Option<Receiver<Message<T>>>,
    recycle: SyncSender<Batch<T>>,
    reader: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetch<T> {
    pub fn start<F>(mut cap: FileCapture, mut each: F) -> Prefetch<T>
    where
        F: FnMut(Frame<'_>, &mut Vec<u8>) -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
        let (recycle, empties) = mpsc::sync_channel(IN_FLIGHT + 1);
        let reader = thread::Builder::new()
            .name("kaprobe-read".into())
            .spawn(move || read_ahead(&mut cap, &mut each, &tx, &empties))
            .expect("spawn the capture reader thread");
        Prefetch {
            rx: Some(rx),
            recycle,
            reader: Some(reader),
        }
    }

    /// The next batch; `None` at the end of the file. A read error comes
    /// after every frame read before it.
    pub fn next_batch(&mut self) -> Option<Result<Batch<T>, CaptureError>> {
        match self.rx.as_ref()?.recv() {
            Ok(Message::Batch(b)) => Some(Ok(b)),
            Ok(Message::End(Ok(()))) | Err(_) => None,
            Ok(Message::End(Err(e))) => Some(Err(e)),
        }
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

fn finish<T>(tx: &SyncSender<Message<T>>, batch: Batch<T>, end: Result<(), CaptureError>) {
    if !batch.items.is_empty() && tx.send(Message::Batch(batch)).is_err() {
        return;
    }
    let _ = tx.send(Message::End(end));
}
