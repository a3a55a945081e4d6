//! The full-text index of a logs part (tantivy): one document per block of records
//! with the block's first row number and the terms of its lines. It answers "which rows
//! may contain these substrings"; the caller verifies each line exactly.
//!
//! Terms are the maximal runs of letters (field `alpha`) and of digits (field `digits`)
//! of a line, lower-cased: `GET /a1b2?id=5b8e` gives `get a b id b e` and `1 2 5 8`.
//! Splitting where letters meet digits keeps the letter dictionary small even when lines
//! are full of ids and numbers, so a word that may be part of a longer word (`|= "ylo"`)
//! is found by walking that small dictionary. A run longer than `MAX_RUN` bytes is not
//! indexed; its block gets the term `1` in field `long` and is always a candidate.
//!
//! Indexes written before this layout (a single `line` field of whole words, long words
//! dropped) are not used for lookups: their parts are scanned.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tantivy::directory::{MmapDirectory, RamDirectory};
use tantivy::query::{BooleanQuery, Occur, Query, RegexQuery, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Directory, Index, IndexWriter, TantivyDocument, Term};

use crate::error::{Result, StorageError};

pub(crate) const DIR: &str = "fts";
/// Records per index document: a document holds the lines of this many consecutive
/// rows, so terms repeated across neighbouring lines are indexed once.
pub(crate) const BLOCK_ROWS: u64 = 32;
/// Memory of the single indexing thread; a part's index has one segment per this much
/// indexing memory (searching several segments costs little, merging them costs a lot).
const WRITER_BUDGET: usize = 128 << 20;
/// The tokenizer of every text field: terms arrive separated by spaces.
const TOKENIZER: &str = "runs";
/// Longest run indexed, in bytes.
const MAX_RUN: usize = 256;

struct Fields {
    row: Field,
    alpha: Field,
    digits: Field,
    long: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let row = b.add_u64_field("row", FAST);
    let alpha = b.add_text_field("alpha", text.clone());
    let digits = b.add_text_field("digits", text.clone());
    let long = b.add_text_field("long", text);
    (
        b.build(),
        Fields {
            row,
            alpha,
            digits,
            long,
        },
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunKind {
    Letters,
    Digits,
}

fn kind(c: char) -> Option<RunKind> {
    if c.is_alphabetic() {
        Some(RunKind::Letters)
    } else if c.is_numeric() {
        Some(RunKind::Digits)
    } else {
        None
    }
}

/// The maximal runs of letters and of digits of `text`: kind and byte range.
fn runs(text: &str) -> impl Iterator<Item = (RunKind, std::ops::Range<usize>)> + '_ {
    let mut it = text.char_indices().peekable();
    std::iter::from_fn(move || {
        loop {
            let (start, c) = it.next()?;
            let Some(k) = kind(c) else { continue };
            let mut end = start + c.len_utf8();
            while let Some(&(i, c)) = it.peek() {
                if kind(c) != Some(k) {
                    break;
                }
                end = i + c.len_utf8();
                it.next();
            }
            return Some((k, start..end));
        }
    })
}

/// Lower case, character by character (never by context, so a substring of a run stays
/// a substring of the lowered run).
fn lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_lower(&mut out, s);
    out
}

/// Appends `s` lower-cased as `lower` does (ASCII without the Unicode tables).
fn push_lower(buf: &mut String, s: &str) {
    if s.is_ascii() {
        buf.extend(s.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        buf.extend(s.chars().flat_map(char::to_lowercase));
    }
}

/// Terms of one block being built, each followed by a space (the index splits on
/// whitespace, so no term needs its own allocation).
#[derive(Default)]
struct BlockTerms {
    alpha: String,
    digits: String,
    long: bool,
}

impl BlockTerms {
    fn add(&mut self, line: &str) {
        for (k, r) in runs(line) {
            if r.len() > MAX_RUN {
                self.long = true;
                continue;
            }
            let buf = match k {
                RunKind::Letters => &mut self.alpha,
                RunKind::Digits => &mut self.digits,
            };
            push_lower(buf, &line[r]);
            buf.push(' ');
        }
    }
}

fn fts_err<'a>(
    part: &'a str,
    op: &'static str,
) -> impl FnOnce(tantivy::TantivyError) -> StorageError + 'a {
    move |source| StorageError::FullText {
        part: part.to_string(),
        op,
        source,
    }
}

/// Builds an index in a staging directory and returns its files (named `fts/<file>`).
pub(crate) struct FtsBuilder {
    part: String,
    dir: PathBuf,
    writer: IndexWriter,
    fields: Fields,
    block: Option<(u64, BlockTerms)>,
}

impl FtsBuilder {
    pub(crate) fn new(part: &str, staging: &Path) -> Result<FtsBuilder> {
        let dir = staging.join(format!("fts-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::DataDir {
            path: dir.clone(),
            op: "create index staging directory",
            source: e,
        })?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(&dir, schema).map_err(fts_err(part, "create"))?;
        index.tokenizers().register(
            TOKENIZER,
            tantivy::tokenizer::TextAnalyzer::from(
                tantivy::tokenizer::WhitespaceTokenizer::default(),
            ),
        );
        let writer = index
            .writer_with_num_threads(1, WRITER_BUDGET)
            .map_err(fts_err(part, "open writer"))?;
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        Ok(FtsBuilder {
            part: part.to_string(),
            dir,
            writer,
            fields,
            block: None,
        })
    }

    /// Adds row `row`; rows are added in order starting at 0.
    pub(crate) fn add(&mut self, row: u64, line: &str) -> Result<()> {
        let start = row - row % BLOCK_ROWS;
        if self.block.as_ref().is_some_and(|(b, _)| *b != start) {
            self.flush_block()?;
        }
        let (_, terms) = self
            .block
            .get_or_insert_with(|| (start, BlockTerms::default()));
        terms.add(line);
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if let Some((start, terms)) = self.block.take() {
            let mut doc = TantivyDocument::default();
            doc.add_u64(self.fields.row, start);
            doc.add_text(self.fields.alpha, terms.alpha);
            doc.add_text(self.fields.digits, terms.digits);
            if terms.long {
                doc.add_text(self.fields.long, "1");
            }
            self.writer
                .add_document(doc)
                .map_err(fts_err(&self.part, "add document"))?;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<Vec<(String, Bytes)>> {
        self.flush_block()?;
        self.writer
            .commit()
            .map_err(fts_err(&self.part, "commit"))?;
        self.writer
            .wait_merging_threads()
            .map_err(fts_err(&self.part, "finish merges"))?;
        let mut files = Vec::new();
        let io = |e: std::io::Error, op| StorageError::DataDir {
            path: self.dir.clone(),
            op,
            source: e,
        };
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io(e, "list index files"))? {
            let entry = entry.map_err(|e| io(e, "list index files"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") {
                continue;
            }
            let data = std::fs::read(entry.path()).map_err(|e| io(e, "read index file"))?;
            files.push((format!("{DIR}/{name}"), Bytes::from(data)));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(files)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// An opened index of one part.
pub(crate) struct Fts {
    part: String,
    reader: tantivy::IndexReader,
    /// `None` for an index of the earlier layout, which is not used for lookups.
    fields: Option<Fields>,
}

impl Fts {
    /// Opens the index from the part directory on the local filesystem.
    pub(crate) fn open_dir(part: &str, dir: &Path) -> Result<Fts> {
        let d = MmapDirectory::open(dir)
            .map_err(|e| StorageError::part(part, "open full-text index", e))?;
        Self::open(part, Box::new(d))
    }

    /// Opens the index from files held in memory.
    pub(crate) fn open_files(part: &str, files: Vec<(String, Bytes)>) -> Result<Fts> {
        let d = RamDirectory::create();
        for (name, data) in files {
            d.atomic_write(Path::new(&name), &data)
                .map_err(|e| StorageError::part(part, "load full-text index", e))?;
        }
        Self::open(part, Box::new(d))
    }

    fn open(part: &str, dir: Box<dyn Directory>) -> Result<Fts> {
        let index = Index::open(dir).map_err(fts_err(part, "open"))?;
        let reader = index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()
            .map_err(fts_err(part, "open reader"))?;
        let have = index.schema();
        let field = |name: &str| have.get_field(name).ok();
        let fields = match (field("row"), field("alpha"), field("digits"), field("long")) {
            (Some(row), Some(alpha), Some(digits), Some(long)) => Some(Fields {
                row,
                alpha,
                digits,
                long,
            }),
            _ => None,
        };
        Ok(Fts {
            part: part.to_string(),
            reader,
            fields,
        })
    }

    /// First rows of the blocks (of `BLOCK_ROWS` rows) whose lines may contain every
    /// substring, sorted, or `None` when the substrings give the index nothing to look up
    /// (then every row is a candidate).
    pub(crate) fn candidate_blocks(&self, contains: &[String]) -> Result<Option<Vec<u64>>> {
        let Some(fields) = &self.fields else {
            return Ok(None);
        };
        let mut exact: Vec<Box<dyn Query>> = Vec::new();
        // Runs at an edge of a needle may be only part of a run of the line. Letter runs
        // are looked up by walking the small letter dictionary; digit runs only when
        // nothing else narrows the search (the digit dictionary holds every number).
        let mut partial_letters: Vec<Box<dyn Query>> = Vec::new();
        let mut partial_digits: Vec<Box<dyn Query>> = Vec::new();
        for needle in contains {
            for (k, r) in runs(needle) {
                let text = lower(&needle[r.clone()]);
                if r.len() > MAX_RUN {
                    continue;
                }
                let field = match k {
                    RunKind::Letters => fields.alpha,
                    RunKind::Digits => fields.digits,
                };
                let open_start = r.start == 0;
                let open_end = r.end == needle.len();
                if !open_start && !open_end {
                    exact.push(Box::new(TermQuery::new(
                        Term::from_field_text(field, &text),
                        IndexRecordOption::Basic,
                    )));
                    continue;
                }
                let pattern = format!(
                    "{}{}{}",
                    if open_start { ".*" } else { "" },
                    regex_escape(&text),
                    if open_end { ".*" } else { "" },
                );
                let q: Box<dyn Query> = Box::new(
                    RegexQuery::from_pattern(&pattern, field)
                        .map_err(fts_err(&self.part, "substring query"))?,
                );
                match k {
                    RunKind::Letters => partial_letters.push(q),
                    RunKind::Digits if !open_start => exact.push(q),
                    RunKind::Digits => partial_digits.push(q),
                }
            }
        }
        let mut must = exact;
        must.append(&mut partial_letters);
        if must.is_empty() {
            must = partial_digits;
        }
        if must.is_empty() {
            return Ok(None);
        }
        let terms = BooleanQuery::new(must.into_iter().map(|q| (Occur::Must, q)).collect());
        // Blocks with a run too long to index may hold anything.
        let long = TermQuery::new(
            Term::from_field_text(fields.long, "1"),
            IndexRecordOption::Basic,
        );
        let query = BooleanQuery::new(vec![
            (Occur::Should, Box::new(terms) as Box<dyn Query>),
            (Occur::Should, Box::new(long)),
        ]);
        let mut rows = self
            .reader
            .searcher()
            .search(&query, &BlockRows)
            .map_err(fts_err(&self.part, "search"))?;
        rows.sort_unstable();
        Ok(Some(rows))
    }
}

/// Collects the first rows (the `row` fast field) of the matching blocks, per segment
/// into a vector: a common term matches a large share of the blocks, which a set of
/// document addresses took a large part of the search to build.
struct BlockRows;

struct SegmentBlockRows {
    rows: tantivy::columnar::Column<u64>,
    out: Vec<u64>,
}

impl tantivy::collector::Collector for BlockRows {
    type Fruit = Vec<u64>;
    type Child = SegmentBlockRows;

    fn for_segment(
        &self,
        _segment: tantivy::SegmentOrdinal,
        reader: &tantivy::SegmentReader,
    ) -> tantivy::Result<SegmentBlockRows> {
        Ok(SegmentBlockRows {
            rows: reader.fast_fields().u64("row")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        Ok(fruits.concat())
    }
}

impl tantivy::collector::SegmentCollector for SegmentBlockRows {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        if let Some(row) = self.rows.first(doc) {
            self.out.push(row);
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.out
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index(lines: &[String]) -> Fts {
        let staging = tempfile::tempdir().unwrap();
        let mut b = FtsBuilder::new("p", staging.path()).unwrap();
        for (row, l) in lines.iter().enumerate() {
            b.add(row as u64, l).unwrap();
        }
        let files = b
            .finish()
            .unwrap()
            .into_iter()
            .map(|(name, data)| (name[DIR.len() + 1..].to_string(), data))
            .collect();
        Fts::open_files("p", files).unwrap()
    }

    /// Blocks holding a line that contains every needle.
    fn truth(lines: &[String], needles: &[String]) -> Vec<u64> {
        let mut out: Vec<u64> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| needles.iter().all(|n| l.contains(n.as_str())))
            .map(|(i, _)| i as u64 - i as u64 % BLOCK_ROWS)
            .collect();
        out.dedup();
        out
    }

    #[test]
    fn runs_split_letters_from_digits() {
        let got: Vec<(RunKind, &str)> = runs("GET /a1b2?id=5b8e ÄÖ3")
            .map(|(k, r)| (k, &"GET /a1b2?id=5b8e ÄÖ3"[r]))
            .collect();
        use RunKind::*;
        assert_eq!(
            got,
            [
                (Letters, "GET"),
                (Letters, "a"),
                (Digits, "1"),
                (Letters, "b"),
                (Digits, "2"),
                (Letters, "id"),
                (Digits, "5"),
                (Letters, "b"),
                (Digits, "8"),
                (Letters, "e"),
                (Letters, "ÄÖ"),
                (Digits, "3"),
            ]
        );
    }

    #[test]
    fn lookups_narrow_to_the_blocks_that_hold_the_words() {
        let mut lines: Vec<String> = (0..200)
            .map(|i| format!("GET /api/orders/{i} 200 req=ab{i:04x}"))
            .collect();
        lines[77] = "payment failed: xylophone-7 card declined".into();
        lines[150] = format!("blob {} end", "z".repeat(MAX_RUN + 1));
        let f = index(&lines);
        let blocks = |n: &[&str]| {
            f.candidate_blocks(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap()
        };
        // Rare words, whole or partial, find their block (and the block with a run too
        // long to index, which may hold anything).
        for n in [
            "xylophone",
            "ylophon",
            "xylophone-7",
            "card declined",
            "Payment",
        ] {
            assert_eq!(blocks(&[n]), Some(vec![64, 128]), "{n}");
        }
        assert_eq!(blocks(&["nowhere"]), Some(vec![128]));
        // Digits narrow too; needles with nothing to look up scan.
        assert_eq!(blocks(&["ab0046"]), Some(vec![64, 128]));
        assert_eq!(blocks(&[" /"]), None);
        assert_eq!(blocks(&[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The index never leaves out a block that holds a matching line, whatever the
        /// words, digits, case, punctuation or scripts.
        #[test]
        fn no_matching_block_is_left_out(
            lines in proptest::collection::vec("[a-cA-C0-2 ./=_Σσς-]{0,12}", 1..120),
            picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..12, 1usize..6), 1..4),
            random in "[a-c0-2 Σς]{1,4}",
        ) {
            let f = index(&lines);
            let mut needles: Vec<String> = picks
                .iter()
                .map(|(line, from, len)| {
                    let l: Vec<char> = lines[line.index(lines.len())].chars().collect();
                    let from = (*from).min(l.len());
                    l[from..(from + len).min(l.len())].iter().collect()
                })
                .filter(|n: &String| !n.is_empty())
                .collect();
            for n in needles.clone() {
                let want = truth(&lines, std::slice::from_ref(&n));
                if let Some(got) = f.candidate_blocks(std::slice::from_ref(&n)).unwrap() {
                    for b in &want {
                        prop_assert!(got.contains(b), "needle {n:?}: block {b} missing from {got:?}");
                    }
                }
            }
            needles.push(random);
            let want = truth(&lines, &needles);
            if let Some(got) = f.candidate_blocks(&needles).unwrap() {
                for b in &want {
                    prop_assert!(got.contains(b), "needles {needles:?}: block {b} missing from {got:?}");
                }
            }
        }
    }
}
