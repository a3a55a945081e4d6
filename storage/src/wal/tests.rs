use super::*;
use proptest::prelude::*;

fn open(dir: &Path) -> (Wal, ReplayReport, Vec<(u8, Vec<u8>)>) {
    let mut got = Vec::new();
    let (wal, report) = Wal::open(
        dir,
        Signal::Logs,
        WalOptions::default(),
        StorageMetrics::unregistered(),
        0,
        |_, k, p| {
            got.push((k, p.to_vec()));
            Ok(())
        },
    )
    .unwrap();
    (wal, report, got)
}

fn append(wal: &Wal, kind: u8, payload: &[u8]) -> Lsn {
    wal.append_with(|_, b| b.push(kind, payload)).unwrap()
}

#[tokio::test]
async fn records_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, report, got) = open(dir.path());
    assert_eq!(report, ReplayReport::default());
    assert!(got.is_empty());
    let mut last = Lsn::default();
    for i in 0..100u32 {
        last = append(&wal, (i % 7) as u8, &i.to_le_bytes());
    }
    wal.sync(last).await.unwrap();
    drop(wal);
    let (_wal, report, got) = open(dir.path());
    assert_eq!(report.records, 100);
    assert!(report.torn_tails.is_empty());
    let want: Vec<_> = (0..100u32)
        .map(|i| ((i % 7) as u8, i.to_le_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn concurrent_writers_share_fsyncs_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    let wal = Arc::new(wal);
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u8 {
                let lsn = append(&wal, t, &[i]);
                wal.sync(lsn).await.unwrap();
                assert!(*wal.durable.lock() >= lsn);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(wal);
    let (_w, report, _) = open(dir.path());
    assert_eq!(report.records, 400);
}

#[test]
fn roll_and_remove_before_drop_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    append(&wal, 1, b"old");
    let boundary = wal.roll().unwrap();
    append(&wal, 1, b"new");
    wal.remove_before(boundary).unwrap();
    drop(wal);
    let (_w, _, got) = open(dir.path());
    assert_eq!(got, vec![(1, b"new".to_vec())]);
}

#[test]
fn corrupt_middle_segment_skips_rest_of_that_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path());
    append(&wal, 1, b"a1");
    append(&wal, 1, b"a2");
    let seg_a = wal.writer.lock().seg;
    wal.roll().unwrap();
    append(&wal, 1, b"b1");
    drop(wal);
    // Flip a payload byte of the second record of the first segment.
    let p = segment_path(dir.path(), seg_a);
    let mut data = fs::read(&p).unwrap();
    let n = data.len();
    data[n - 1] ^= 0xff;
    fs::write(&p, &data).unwrap();
    let (_w, report, got) = open(dir.path());
    assert_eq!(got, vec![(1, b"a1".to_vec()), (1, b"b1".to_vec())]);
    assert_eq!(report.corrupt_records, 1);
    assert!(report.torn_tails.is_empty());
}

#[test]
fn garbage_segment_file_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        segment_path(dir.path(), 7),
        b"this is not a wal segment at all",
    )
    .unwrap();
    let (_w, report, got) = open(dir.path());
    assert!(got.is_empty());
    assert_eq!(report.torn_tails.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Cutting the last segment anywhere replays exactly a prefix of the records, and the
    /// torn tail is truncated so that appends after reopening are readable.
    #[test]
    fn torn_tail_replays_a_prefix(records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..20), cut_frac in 0.0f64..1.0) {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path());
        for r in &records {
            append(&wal, 3, r);
        }
        let seg = wal.writer.lock().seg;
        drop(wal);
        let p = segment_path(dir.path(), seg);
        let data = fs::read(&p).unwrap();
        let cut = (data.len() as f64 * cut_frac) as usize;
        fs::write(&p, &data[..cut]).unwrap();
        let (wal, report, got) = open(dir.path());
        prop_assert!(got.len() <= records.len());
        for (g, r) in got.iter().zip(&records) {
            prop_assert_eq!(&g.1, r);
        }
        if cut == data.len() {
            prop_assert!(report.torn_tails.is_empty());
            prop_assert_eq!(got.len(), records.len());
        }
        append(&wal, 3, b"after");
        drop(wal);
        let (_w, report2, got2) = open(dir.path());
        prop_assert!(report2.torn_tails.is_empty());
        prop_assert_eq!(got2.len(), got.len() + 1);
        prop_assert_eq!(&got2.last().unwrap().1, &b"after".to_vec());
    }
}
