//! The pack writer of a format-2 vault: new chunk frames are appended to an open pack, a full
//! pack is sealed and uploaded in the background (a few at once, so memory stays bounded by
//! about that many packs), and [`PackWriter::flush`] uploads the open pack and waits for every
//! upload, returning what was written so the vault can index it. Nothing here is visible to a
//! reader until the vault writes the index segment and then the manifest.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::codec::Codec;
use super::layout::ChunkId;
use super::pack::{PackBuilder, PackEntry, PackId};
use crate::backend::DynBackend;
use crate::error::{Error, ErrorKind, Result};

/// A pack written by this writer and the chunks in it.
pub type Written = (PackId, Vec<PackEntry>);

/// Packs being uploaded at once by one writer.
const UPLOADS_IN_FLIGHT: usize = 3;

#[derive(Default)]
struct State {
    open: PackBuilder,
    running: Vec<JoinHandle<Result<Written>>>,
}

/// Fills packs of about `target` bytes and uploads them.
pub struct PackWriter {
    backend: DynBackend,
    codec: Codec,
    target: u64,
    state: Mutex<State>,
    uploads: Arc<Semaphore>,
    /// Buffers of uploaded packs, for the next packs to fill.
    spare: Arc<Mutex<Vec<BytesMut>>>,
    /// Held through a whole flush: a commit that finds nothing pending must not pass a flush
    /// still uploading the pack that holds its chunks.
    flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PackWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackWriter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PackWriter {
    /// A writer of packs of about `target` bytes to `backend`.
    pub fn new(backend: DynBackend, codec: Codec, target: u64) -> Self {
        Self {
            backend,
            codec,
            target,
            state: Mutex::new(State::default()),
            uploads: Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT)),
            spare: Arc::new(Mutex::new(Vec::new())),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the frame of chunk `id`. A frame of half the target or more gets a pack of its own.
    pub async fn add(&self, id: ChunkId, frame: Bytes) -> Result<()> {
        if frame.len() as u64 >= self.target / 2 {
            let mut own = PackBuilder::with_capacity(frame.len() + 1024);
            own.push(id, &frame);
            return self.upload(own).await;
        }
        let full = {
            let mut state = self.state();
            if state.open.is_empty() {
                let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
                state.open = match spare {
                    Some(buf) => PackBuilder::with_buffer(buf),
                    None => PackBuilder::with_capacity(self.target as usize + (64 << 10)),
                };
            }
            state.open.push(id, &frame);
            (state.open.len() >= self.target).then(|| std::mem::take(&mut state.open))
        };
        match full {
            Some(pack) => self.upload(pack).await,
            None => Ok(()),
        }
    }

    /// Seals `pack` and starts its upload once fewer than [`UPLOADS_IN_FLIGHT`] are running.
    async fn upload(&self, pack: PackBuilder) -> Result<()> {
        let permit = Arc::clone(&self.uploads)
            .acquire_owned()
            .await
            .expect("the upload semaphore is never closed");
        let (backend, codec) = (Arc::clone(&self.backend), self.codec.clone());
        let (spare, reusable) = (Arc::clone(&self.spare), self.target as usize);
        let handle = tokio::spawn(async move {
            let (id, bytes, entries) = tokio::task::spawn_blocking(move || pack.finish(&codec))
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::BackendError,
                        format!("internal task failed: {e}"),
                    )
                })?;
            let len = bytes.len();
            let kept = bytes.clone();
            let put = backend.put_whole(&id.key(), bytes).await;
            // Once the store holds no reference to it, the buffer serves another pack.
            if let Ok(buf) = kept.try_into_mut() {
                let mut spare = spare.lock().unwrap_or_else(|p| p.into_inner());
                if buf.capacity() >= reusable && spare.len() <= UPLOADS_IN_FLIGHT {
                    spare.push(buf);
                }
            }
            put?;
            tracing::debug!("stored pack {id} ({len} bytes, {} chunks)", entries.len());
            drop(permit);
            Ok((id, entries))
        });
        let mut state = self.state();
        state.running.push(handle);
        Ok(())
    }

    /// Starts uploading the open pack, so the frames added next go into packs of their own (a
    /// tree's listing apart from its files' data). [`PackWriter::flush`] still waits for it.
    pub async fn cut(&self) -> Result<()> {
        let open = std::mem::take(&mut self.state().open);
        if open.is_empty() {
            return Ok(());
        }
        self.upload(open).await
    }

    /// Uploads the open pack and waits for every upload started so far; returns the packs
    /// written since the last flush. The first failed upload is the error.
    pub async fn flush(&self) -> Result<Vec<Written>> {
        let _one = self.flushing.lock().await;
        let open = std::mem::take(&mut self.state().open);
        if !open.is_empty() {
            self.upload(open).await?;
        }
        let running = std::mem::take(&mut self.state().running);
        let mut written = Vec::with_capacity(running.len());
        let mut failed = None;
        for handle in running {
            match handle.await {
                Ok(Ok(w)) => written.push(w),
                Ok(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Err(e) => {
                    failed.get_or_insert(Error::new(
                        ErrorKind::BackendError,
                        format!("internal task failed: {e}"),
                    ));
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}
