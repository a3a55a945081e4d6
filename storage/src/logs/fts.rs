//! The full-text index of a logs part (tantivy): one document per record with its row
//! number, the line and the attribute values, tokenized by tantivy's default analyzer
//! (split on non-alphanumerics, lower-cased, tokens over 40 bytes dropped). It answers
//! "which rows may contain these substrings"; the caller verifies each line exactly.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tantivy::collector::DocSetCollector;
use tantivy::directory::{MmapDirectory, RamDirectory};
use tantivy::query::{BooleanQuery, Occur, Query, RegexQuery, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Directory, Index, IndexWriter, TantivyDocument, Term};

use crate::error::{Result, StorageError};

pub(crate) const DIR: &str = "fts";
/// Records per index document: a document holds the lines and attributes of this many
/// consecutive rows, so tokens repeated across neighbouring lines are indexed once.
pub(crate) const BLOCK_ROWS: u64 = 32;
/// Memory of the single indexing thread; a part's index has one segment per this much
/// indexing memory (searching several segments costs little, merging them costs a lot).
const WRITER_BUDGET: usize = 128 << 20;

struct Fields {
    row: Field,
    line: Field,
    attrs: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::Basic),
    );
    let row = b.add_u64_field("row", FAST);
    let line = b.add_text_field("line", text.clone());
    let attrs = b.add_text_field("attrs", text);
    (b.build(), Fields { row, line, attrs })
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
    block: Option<(u64, TantivyDocument)>,
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
    pub(crate) fn add(&mut self, row: u64, line: &str, attrs: &str) -> Result<()> {
        let start = row - row % BLOCK_ROWS;
        if self.block.as_ref().is_some_and(|(b, _)| *b != start) {
            self.flush_block()?;
        }
        let row_field = self.fields.row;
        let (_, doc) = self.block.get_or_insert_with(|| {
            let mut d = TantivyDocument::default();
            d.add_u64(row_field, start);
            (start, d)
        });
        doc.add_text(self.fields.line, line);
        if !attrs.is_empty() {
            doc.add_text(self.fields.attrs, attrs);
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if let Some((_, doc)) = self.block.take() {
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
    index: Index,
    reader: tantivy::IndexReader,
    fields: Fields,
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
        let (_, fields) = schema();
        Ok(Fts {
            part: part.to_string(),
            index,
            reader,
            fields,
        })
    }

    /// First rows of the blocks (of `BLOCK_ROWS` rows) whose lines may contain every
    /// substring, sorted, or `None` when the substrings give the index nothing to look up
    /// (then every row is a candidate).
    pub(crate) fn candidate_blocks(&self, contains: &[String]) -> Result<Option<Vec<u64>>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut analyzer =
            self.index.tokenizers().get("default").ok_or_else(|| {
                StorageError::part(&self.part, "search", "default tokenizer missing")
            })?;
        for needle in contains {
            let starts_mid_word = needle.chars().next().is_some_and(char::is_alphanumeric);
            let ends_mid_word = needle
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
            let mut stream = analyzer.token_stream(needle);
            let mut tokens = Vec::new();
            while let Some(t) = stream.next() {
                tokens.push((t.offset_from, t.offset_to, t.text.clone()));
            }
            for (from, to, text) in tokens {
                // A token at the edge of the needle may be only part of a word in the line.
                let partial_start = from == 0 && starts_mid_word;
                let partial_end = to == needle.len() && ends_mid_word;
                if partial_start {
                    continue;
                }
                let q: Box<dyn Query> = if partial_end {
                    let pattern = format!("{}.*", regex_escape(&text));
                    Box::new(
                        RegexQuery::from_pattern(&pattern, self.fields.line)
                            .map_err(fts_err(&self.part, "prefix query"))?,
                    )
                } else {
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.line, &text),
                        IndexRecordOption::Basic,
                    ))
                };
                clauses.push((Occur::Must, q));
            }
        }
        if clauses.is_empty() {
            return Ok(None);
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let docs = searcher
            .search(&query, &DocSetCollector)
            .map_err(fts_err(&self.part, "search"))?;
        let mut rows = Vec::with_capacity(docs.len());
        let mut columns = Vec::new();
        for seg in searcher.segment_readers() {
            columns.push(
                seg.fast_fields()
                    .u64("row")
                    .map_err(fts_err(&self.part, "read row numbers"))?,
            );
        }
        for d in docs {
            if let Some(row) = columns
                .get(d.segment_ord as usize)
                .and_then(|c| c.first(d.doc_id))
            {
                rows.push(row);
            }
        }
        rows.sort_unstable();
        Ok(Some(rows))
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
