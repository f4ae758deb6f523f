//! gzip on every core, made as pigz and Go's pgzip (which skopeo and podman push with) make it:
//! the input is cut into blocks of [`BLOCK_BYTES`], each deflated on a worker thread with the
//! 32 KiB before it as its dictionary — so matches reach across block boundaries and the ratio
//! stays that of one stream — and ended with a sync flush (an empty stored block: byte-aligned,
//! not final). Joined in order they are one deflate stream, which the last block ends; the blocks'
//! CRC-32s combine into the one gzip trailer. The result is a single gzip member that any gzip
//! reader takes.
//!
//! Block boundaries depend on input offsets only, so the bytes are the same whatever the number
//! of threads: the same layer always gets the same blob digest. At most a few blocks per thread
//! are in flight, which bounds memory whatever the layer's size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression as Level, FlushCompress, Status};

/// Input per block: pgzip's default. Larger blocks save little (a sync flush costs 5 bytes).
pub const BLOCK_BYTES: usize = 1 << 20;

/// The window of deflate: what a block may refer back to in the one before it.
const DICTIONARY_BYTES: usize = 32 << 10;

/// Blocks queued or being compressed, per worker thread.
const IN_FLIGHT_PER_THREAD: usize = 2;

/// The gzip header of RFC 1952 as Go writes it: deflate, no flags, no mtime, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A block for a worker, and where its result goes.
struct Job {
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Deflated>>,
}

/// A block deflated: its bytes, and the CRC-32 of its input.
struct Deflated {
    output: Vec<u8>,
    crc: crc32fast::Hasher,
    /// The input buffer, handed back for the next block.
    input: Vec<u8>,
}

/// A gzip compressor writing one gzip member into `out`, deflating on `threads` worker threads.
pub struct ParallelGzEncoder<W: Write> {
    out: Option<W>,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Deflated>>>,
    spare: Vec<Vec<u8>>,
    max_in_flight: usize,
    crc: crc32fast::Hasher,
    header_written: bool,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// A compressor at deflate `level` (0-9) on `threads` workers (at least one).
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || work(&queue, level))
            })
            .collect();
        ParallelGzEncoder {
            out: Some(out),
            block: Vec::with_capacity(BLOCK_BYTES),
            dictionary: Vec::new(),
            jobs: Some(jobs),
            workers,
            pending: VecDeque::new(),
            spare: Vec::new(),
            max_in_flight: threads * IN_FLIGHT_PER_THREAD,
            crc: crc32fast::Hasher::new(),
            header_written: false,
        }
    }

    fn out(&mut self) -> io::Result<&mut W> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("the gzip stream is finished"))
    }

    /// Hands the current block to the workers, keeping its tail as the next one's dictionary.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_BYTES));
        let input = std::mem::replace(&mut self.block, next);
        let tail = input.len().saturating_sub(DICTIONARY_BYTES);
        let dictionary = std::mem::replace(&mut self.dictionary, input[tail..].to_vec());
        let (reply, result) = mpsc::sync_channel(1);
        let job = Job {
            input,
            dictionary,
            last,
            reply,
        };
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("no workers"))?;
        jobs.send(job)
            .map_err(|_| io::Error::other("the gzip workers stopped"))?;
        self.pending.push_back(result);
        while self.pending.len() > self.max_in_flight {
            self.write_next()?;
        }
        Ok(())
    }

    /// Waits for the oldest block and writes it out.
    fn write_next(&mut self) -> io::Result<()> {
        let Some(result) = self.pending.pop_front() else {
            return Ok(());
        };
        let deflated = result
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped"))??;
        if !self.header_written {
            self.out()?.write_all(&HEADER)?;
            self.header_written = true;
        }
        self.out()?.write_all(&deflated.output)?;
        self.crc.combine(&deflated.crc);
        let mut input = deflated.input;
        input.clear();
        self.spare.push(input);
        Ok(())
    }

    /// Ends the stream — the last block, then the CRC-32 and length trailer — and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_next()?;
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
        let length = crc.total_len() as u32;
        let mut trailer = [0; 8];
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&length.to_le_bytes());
        self.out()?.write_all(&trailer)?;
        self.out
            .take()
            .ok_or_else(|| io::Error::other("the gzip stream is finished"))
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_BYTES - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_BYTES {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Writes out the blocks already deflated; a partial block waits for more input, since
    /// flushing it would change the bytes of the stream.
    fn flush(&mut self) -> io::Result<()> {
        self.out()?.flush()
    }
}

impl<W: Write> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        // Closing the queue stops the workers once they finish their current block.
        self.jobs = None;
        self.pending.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: deflates blocks from the queue until it closes, reusing one compressor.
fn work(queue: &Mutex<Receiver<Job>>, level: u32) {
    let mut compress = Compress::new(Level::new(level), false);
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = deflate_block(&mut compress, &job);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&job.input);
        let deflated = result.map(|output| Deflated {
            output,
            crc,
            input: job.input,
        });
        // The encoder may be gone (a failed copy); the result is then of no use.
        let _ = job.reply.send(deflated);
    }
}

/// Raw deflate of one block: primed with the dictionary, ended by a sync flush (or, for the last
/// block, the final block of the stream).
fn deflate_block(compress: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
    compress.reset();
    if !job.dictionary.is_empty() {
        compress
            .set_dictionary(&job.dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &job.input;
    let mut output = Vec::with_capacity(input.len() / 2 + 1024);
    let start = compress.total_in();
    loop {
        let consumed = (compress.total_in() - start) as usize;
        if output.len() == output.capacity() {
            output.reserve(input.len() / 4 + 1024);
        }
        let status = compress
            .compress_vec(&input[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let consumed = (compress.total_in() - start) as usize;
        let done = match status {
            Status::StreamEnd => true,
            // A sync flush is complete when deflate returns with room left in the output.
            Status::Ok | Status::BufError => {
                !job.last && consumed == input.len() && output.len() < output.capacity()
            }
        };
        if done {
            return Ok(output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(input: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut encoder = ParallelGzEncoder::new(Vec::new(), 6, threads);
        for chunk in input.chunks(write_size.max(1)) {
            encoder.write_all(chunk).unwrap();
        }
        encoder.finish().unwrap()
    }

    /// Text that repeats across block boundaries, and noise that does not compress.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|i| {
                if (i / 300_000) % 2 == 0 {
                    b"containers-storage layer "[i % 25]
                } else {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                }
            })
            .collect()
    }

    #[test]
    fn one_gzip_member_any_reader_takes_whatever_the_threads() {
        for len in [0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, 3 * BLOCK_BYTES + 12_345] {
            let input = sample(len);
            let one = gzip(&input, 1, 65_536);
            assert_eq!(gunzip(&one), input, "{len} bytes");
            assert_eq!(gzip(&input, 3, 1000), one, "{len} bytes, 3 threads");
            // A single member: the plain (not multi-member) decoder reads all of it.
            let mut decoder = flate2::read::GzDecoder::new(&one[..]);
            let mut out = Vec::new();
            decoder.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), len);
        }
    }

    #[test]
    fn the_dictionary_keeps_the_ratio_of_one_stream() {
        let input = b"a line of a config file that repeats\n".repeat(200_000);
        let parallel = gzip(&input, 2, 1 << 16);
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        serial.write_all(&input).unwrap();
        let serial = serial.finish().unwrap();
        assert!(
            parallel.len() < serial.len() + serial.len() / 10 + 64,
            "{} vs {}",
            parallel.len(),
            serial.len()
        );
    }
}
