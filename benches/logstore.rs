//! FileLog group commit: batch append throughput for batches of 1, 16, 64
//! and 256 entries of 100 bytes. Every batch is one write and one
//! fdatasync, so entries/s ≈ batch size × fsyncs/s until the write itself
//! costs more than the fsync.
//!
//! Two layouts: `padded` (the default: segments zero-filled 1 MiB ahead)
//! and `unpadded` (`prealloc_bytes: 0`, every append grows the file), to
//! show what the padding buys on this disk.
//!
//! The log lives under `target/` (on the build's disk, not a tmpfs, so the
//! fsyncs are real). After criterion's figures, a summary line per layout
//! and batch size gives entries/s and fsyncs/s counted by the log itself
//! over all the iterations criterion ran (warm-up included).
//!
//! `cargo bench --bench logstore` (quick: `-- --warm-up-time 1
//! --measurement-time 3`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zkfle::logstore::{Entry, FileLog, FileLogOptions, LogStore};

const ENTRY_BYTES: usize = 100;

/// A scratch directory on the real disk.
fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-logstore");
    std::fs::create_dir_all(&base).expect("create target/bench-logstore");
    tempfile::tempdir_in(base).expect("tempdir")
}

fn append_batches(c: &mut Criterion) {
    let mut summary = Vec::new();
    let layouts = [
        ("padded", FileLogOptions::default()),
        (
            "unpadded",
            FileLogOptions {
                prealloc_bytes: 0,
                ..FileLogOptions::default()
            },
        ),
    ];
    for (layout, opts) in layouts {
        let mut group = c.benchmark_group(format!("logstore/append/{layout}"));
        group.sample_size(20);
        for batch in [1usize, 16, 64, 256] {
            append_batch(&mut group, layout, opts, batch, &mut summary);
        }
        group.finish();
    }
    for line in summary {
        println!("logstore/append summary: {line}");
    }
}

fn append_batch(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    layout: &str,
    opts: FileLogOptions,
    batch: usize,
    summary: &mut Vec<String>,
) {
    {
        group.throughput(Throughput::Elements(batch as u64));
        let dir = scratch();
        let mut log = FileLog::open_with(dir.path(), opts).expect("open");
        let payload = bytes::Bytes::from(vec![0x5a; ENTRY_BYTES]);
        let mut next = 1i64;
        let mut spent = Duration::ZERO;
        let mut entries = 0u64;
        let mut fsyncs = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &n| {
            b.iter_custom(|iters| {
                let before = log.stats();
                let start = Instant::now();
                for _ in 0..iters {
                    let entries: Vec<Entry> = (0..n)
                        .map(|i| Entry {
                            zxid: next + i as i64,
                            data: payload.clone(),
                        })
                        .collect();
                    next += n as i64;
                    log.append(black_box(&entries)).expect("append");
                }
                let took = start.elapsed();
                let after = log.stats();
                spent += took;
                entries += after.entries - before.entries;
                fsyncs += (after.file_fsyncs - before.file_fsyncs)
                    + (after.dir_fsyncs - before.dir_fsyncs);
                took
            })
        });
        let secs = spent.as_secs_f64().max(1e-9);
        summary.push(format!(
            "{layout:>8} batch {batch:>3}: {:>9.0} entries/s, {:>6.0} fsyncs/s ({} entries, {} fsyncs in {:.2} s, {} segments)",
            entries as f64 / secs,
            fsyncs as f64 / secs,
            entries,
            fsyncs,
            secs,
            log.segment_count()
        ));
    }
}

criterion_group!(benches, append_batches);
criterion_main!(benches);
