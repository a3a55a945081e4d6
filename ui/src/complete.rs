//! Query autocompletion: what the word at the cursor of a PromQL or LogQL query can be
//! (a metric name, a label name, a label's value), which candidates fit what was typed,
//! and the text after one is chosen. The [`QueryBox`] component offers them under a
//! query's text area; the logic here is plain functions, tested without a browser.

use crate::api::{LokiData, LokiStream, PromEnvelope, encode, use_api};
use leptos::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// The query language of a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    PromQL,
    LogQL,
}

/// What the word at the cursor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// A metric or function name (PromQL, outside braces).
    MetricName,
    /// A label name: inside `{...}` (with the selector's metric name, if it has one) or
    /// in the parentheses of `by`, `without`, `on`, `ignoring`, `group_left/right`.
    LabelName { metric: Option<String> },
    /// A value of `label`, inside the quotes after a label matcher.
    LabelValue {
        label: String,
        metric: Option<String>,
    },
    /// One of fixed words: LogQL's pipeline stages after `|` (when no stream selector
    /// comes before it), its functions and aggregations where an expression starts.
    Keyword(&'static [&'static str]),
    /// A label of the lines that the LogQL log query `query` (a stream selector and the
    /// pipeline before the cursor's stage) gives, with the labels its parser stages
    /// extract: after `|` (a label filter, offered with the stage names when `stages`),
    /// and in the label lists of `keep`, `drop` and `unwrap`.
    LogLabel { query: String, stages: bool },
}

/// The word at the cursor and what it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub want: Want,
    /// What has been typed of the word.
    pub prefix: String,
    /// Byte range of the text a chosen candidate replaces (a label value's range
    /// includes its closing quote, which the replacement writes again).
    pub start: usize,
    pub end: usize,
    /// The quote a label value is written in.
    pub quote: char,
}

/// PromQL's functions and aggregations, offered with metric names.
const PROMQL_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count",
    "count_over_time",
    "count_values",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "info",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "limit_ratio",
    "limitk",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "minute",
    "month",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "topk",
    "vector",
    "year",
];

/// LogQL's pipeline stages (after `|`).
const LOGQL_STAGES: &[&str] = &[
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "decolorize",
    "unwrap",
];

/// LogQL's range functions and aggregations.
const LOGQL_FUNCTIONS: &[&str] = &[
    "count_over_time",
    "rate",
    "bytes_over_time",
    "bytes_rate",
    "absent_over_time",
    "sum_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "rate_counter",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
];

/// Keywords whose parentheses hold label names.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Where the identifier that ends `s` starts (`s.len()` when `s` ends otherwise).
fn word_start(s: &str) -> usize {
    s.char_indices()
        .rev()
        .take_while(|(_, c)| is_word_char(*c))
        .last()
        .map_or(s.len(), |(i, _)| i)
}

/// The identifier that ends at byte `end` of `s` (after trailing spaces).
fn word_before(s: &str, end: usize) -> &str {
    let head = s.get(..end).unwrap_or_default().trim_end();
    &head[word_start(head)..]
}

/// What the word at byte `cursor` of `text` can be, or `None` where nothing is offered
/// (inside a number, a duration, a line filter's string, a comment).
pub fn context(text: &str, cursor: usize, lang: Lang) -> Option<Context> {
    let before = text.get(..cursor)?;
    // One pass over the text before the cursor, tracking strings, braces and
    // parentheses.
    let mut string: Option<(char, usize)> = None; // quote, start of the contents
    let mut escaped = false;
    let mut brace: Option<Option<String>> = None; // inside {...}: the metric name
    let mut bracket = false;
    let mut comment = false;
    let mut parens: Vec<bool> = Vec::new(); // whether each open ( holds label names
    let mut matcher_label: Option<String> = None;
    // LogQL: where the last stream selector starts, and the last `|` after it.
    let mut selector: Option<usize> = None;
    let mut pipe: Option<usize> = None;
    for (i, c) in before.char_indices() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if let Some((q, _)) = string {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                string = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                string = Some((c, i + c.len_utf8()));
                matcher_label = brace.as_ref().and_then(|_| {
                    // `label=~"`: the label is the word before the operator.
                    let head = before[..i].trim_end().trim_end_matches(['=', '~', '!']);
                    let w = word_before(head, head.len());
                    (!w.is_empty()).then(|| w.to_string())
                });
            }
            '#' => comment = true,
            '{' => {
                let metric = word_before(before, i);
                let metric =
                    (lang == Lang::PromQL && !metric.is_empty()).then(|| metric.to_string());
                brace = Some(metric);
                selector = Some(i);
                pipe = None;
            }
            '|' if brace.is_none() => pipe = Some(i),
            '}' => brace = None,
            '[' => bracket = true,
            ']' => bracket = false,
            '(' => parens.push(GROUPING.contains(&word_before(before, i))),
            ')' => {
                parens.pop();
            }
            _ => {}
        }
    }
    if comment || bracket {
        return None;
    }
    if let Some((quote, start)) = string {
        let label = matcher_label?;
        let metric = brace?;
        // The value runs to its closing quote, if that is on this line.
        let rest = &text[cursor..];
        let end = rest
            .char_indices()
            .take_while(|(_, c)| *c != '\n')
            .find(|(_, c)| *c == quote)
            .map_or(cursor, |(i, c)| cursor + i + c.len_utf8());
        return Some(Context {
            want: Want::LabelValue { label, metric },
            prefix: before[start..].to_string(),
            start,
            end,
            quote,
        });
    }
    // The word being typed ends at the cursor (it may be empty).
    let start = word_start(before);
    let word = &before[start..];
    let end = cursor
        + text[cursor..]
            .char_indices()
            .find(|(_, c)| !is_word_char(*c))
            .map_or(text.len() - cursor, |(i, _)| i);
    let ctx = |want| {
        Some(Context {
            want,
            prefix: word.to_string(),
            start,
            end,
            quote: '"',
        })
    };
    let prev = before[..start].trim_end().chars().next_back();
    if let Some(metric) = brace {
        // A label name starts a matcher: after `{` or `,`.
        return match prev {
            Some('{' | ',') => ctx(Want::LabelName { metric }),
            _ => None,
        };
    }
    if parens.last() == Some(&true) && matches!(prev, Some('(' | ',')) {
        return ctx(Want::LabelName { metric: None });
    }
    let starts_number = word.starts_with(|c: char| c.is_ascii_digit());
    if word.is_empty() || starts_number {
        return None;
    }
    if lang == Lang::LogQL
        && let Some(want) = log_label(before, start, selector, pipe)
    {
        return ctx(want);
    }
    match (lang, prev) {
        (Lang::PromQL, _) => ctx(Want::MetricName),
        (Lang::LogQL, Some('|')) => ctx(Want::Keyword(LOGQL_STAGES)),
        (Lang::LogQL, None | Some('(' | ',')) => ctx(Want::Keyword(LOGQL_FUNCTIONS)),
        (Lang::LogQL, _) => None,
    }
}

/// Where a LogQL word starting at byte `start` of `before` names a label of the log
/// query's lines: the first word of a stage (a label filter, or a stage's name), or an
/// item of `keep`, `drop` or `unwrap`. `selector` and `pipe` are where the last stream
/// selector and the last `|` after it are.
fn log_label(
    before: &str,
    start: usize,
    selector: Option<usize>,
    pipe: Option<usize>,
) -> Option<Want> {
    let (selector, pipe) = (selector?, pipe?);
    let query = before.get(selector..pipe)?.trim().to_string();
    // `|=` and `|~` are line filters, not stages.
    let stage = before.get(pipe + 1..start)?;
    if stage.starts_with(['=', '~']) {
        return None;
    }
    let stage = stage.trim();
    if stage.is_empty() {
        return Some(Want::LogLabel {
            query,
            stages: true,
        });
    }
    let (head, _) = stage.split_once(char::is_whitespace).unwrap_or((stage, ""));
    let listing = match head {
        "keep" | "drop" => stage == head || stage.ends_with(','),
        "unwrap" => stage == head,
        _ => false,
    };
    listing.then_some(Want::LogLabel {
        query,
        stages: false,
    })
}

/// Byte offset in `s` of the UTF-16 offset `units` (what a text area's
/// `selectionStart` counts), clamped to the text.
pub fn byte_offset(s: &str, units: usize) -> usize {
    let mut seen = 0;
    for (i, c) in s.char_indices() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16();
    }
    s.len()
}

/// UTF-16 offset of byte `byte` of `s`.
pub fn utf16_offset(s: &str, byte: usize) -> usize {
    s.get(..byte).unwrap_or(s).encode_utf16().count()
}

/// The candidates that fit `prefix`, at most `max`: those that start with it (ignoring
/// case) first, then those that contain it, each group in the given order.
pub fn rank(candidates: &[String], prefix: &str, max: usize) -> Vec<String> {
    let p = prefix.to_lowercase();
    let lower: Vec<String> = candidates.iter().map(|c| c.to_lowercase()).collect();
    let starts = (0..candidates.len()).filter(|&i| lower[i].starts_with(&p));
    let contains =
        (0..candidates.len()).filter(|&i| !lower[i].starts_with(&p) && lower[i].contains(&p));
    starts
        .chain(contains)
        .filter(|&i| candidates[i] != prefix)
        .take(max)
        .map(|i| candidates[i].clone())
        .collect()
}

/// `text` with `choice` in place of the context's word, and the byte offset of the
/// cursor after it; `None` if the text changed so that the context no longer fits it.
pub fn accept(text: &str, ctx: &Context, choice: &str) -> Option<(String, usize)> {
    let head = text.get(..ctx.start)?;
    let tail = text.get(ctx.end..)?;
    let inserted = match ctx.want {
        Want::LabelValue { .. } => {
            let mut v = String::new();
            for c in choice.chars() {
                if ctx.quote != '`' && (c == '\\' || c == ctx.quote) {
                    v.push('\\');
                }
                v.push(c);
            }
            v.push(ctx.quote);
            v
        }
        _ => choice.to_string(),
    };
    let cursor = head.len() + inserted.len();
    Some((format!("{head}{inserted}{tail}"), cursor))
}

/// The API path that lists the candidates of `want`; `None` for fixed words.
pub fn source(want: &Want, lang: Lang) -> Option<String> {
    let with_metric = |path: String, metric: &Option<String>| match metric {
        Some(m) => format!("{path}?match[]={}", encode(m)),
        None => path,
    };
    Some(match (lang, want) {
        (_, Want::Keyword(_)) => return None,
        (_, Want::MetricName) => "/api/v1/label/__name__/values".to_string(),
        (Lang::PromQL, Want::LabelName { metric }) => with_metric("/api/v1/labels".into(), metric),
        (Lang::PromQL, Want::LabelValue { label, metric }) => {
            with_metric(format!("/api/v1/label/{}/values", encode(label)), metric)
        }
        (Lang::LogQL, Want::LabelName { .. }) => "/loki/api/v1/labels".to_string(),
        (Lang::LogQL, Want::LabelValue { label, .. }) => {
            format!("/loki/api/v1/label/{}/values", encode(label))
        }
        // The labels of the most recent lines of the last hour, as Loki's query gives
        // them: stream labels, structured metadata and what the pipeline extracts.
        (_, Want::LogLabel { query, .. }) => format!(
            "/loki/api/v1/query_range?query={}&limit={SAMPLE_LINES}&direction=backward",
            encode(query)
        ),
    })
}

/// How many recent lines of a log query are read to find the labels it gives.
const SAMPLE_LINES: usize = 50;

/// The label names of the lines of a Loki query's answer, sorted, without the
/// `__error__` labels that mark lines a parser could not read.
pub fn line_labels(data: LokiData) -> Vec<String> {
    let LokiData::Streams(streams) = data else {
        return Vec::new();
    };
    let names: BTreeSet<String> = streams
        .into_iter()
        .flat_map(LokiStream::into_lines)
        .flat_map(|line| line.labels.into_keys())
        .filter(|k| !k.starts_with("__error"))
        .collect();
    names.into_iter().collect()
}

/// Most candidates shown at once.
const MAX_SHOWN: usize = 30;

/// A query's text area (form field `name`) that offers completions as one types:
/// arrow keys move through them, Enter or Tab takes one, Escape closes the list; Enter
/// with the list closed runs the query (Shift+Enter starts a new line).
#[component]
pub fn QueryBox(
    /// Form field name.
    name: &'static str,
    /// The query the box starts with.
    value: String,
    lang: Lang,
    /// Element id of the suggestion list (unique on the page).
    list_id: String,
    placeholder: &'static str,
) -> impl IntoView {
    let api = use_api();
    let input = NodeRef::<leptos::html::Textarea>::new();
    let items = RwSignal::new(Vec::<String>::new());
    let active = RwSignal::new(0usize);
    let current = StoredValue::new(None::<Context>);
    let cache = StoredValue::new(HashMap::<String, Vec<String>>::new());
    // Answers to older keystrokes are dropped.
    let generation = StoredValue::new(0u64);

    let close = move || {
        items.set(Vec::new());
        current.set_value(None);
    };
    let show = move |ctx: Context, candidates: &[String]| {
        let mut all: Vec<String> = candidates.to_vec();
        if ctx.want == Want::MetricName {
            all.extend(PROMQL_FUNCTIONS.iter().map(|f| f.to_string()));
        }
        if matches!(ctx.want, Want::LabelName { .. }) {
            all.retain(|l| l != "__name__");
        }
        if let Want::LogLabel { stages: true, .. } = ctx.want {
            all.extend(LOGQL_STAGES.iter().map(|w| w.to_string()));
        }
        let shown = rank(&all, &ctx.prefix, MAX_SHOWN);
        active.set(0);
        current.set_value((!shown.is_empty()).then_some(ctx));
        items.set(shown);
    };
    let refresh = move || {
        let Some(el) = input.get_untracked() else {
            return;
        };
        let text = el.value();
        let units = el.selection_start().ok().flatten().unwrap_or(0) as usize;
        let Some(ctx) = context(&text, byte_offset(&text, units), lang) else {
            return close();
        };
        let this = generation.get_value() + 1;
        generation.set_value(this);
        let Some(url) = source(&ctx.want, lang) else {
            let words = match ctx.want {
                Want::Keyword(words) => words.iter().map(|w| w.to_string()).collect(),
                _ => Vec::new(),
            };
            return show(ctx, &words);
        };
        if let Some(c) = cache.with_value(|c| c.get(&url).cloned()) {
            return show(ctx, &c);
        }
        let api = api.clone();
        leptos::task::spawn_local(async move {
            // A query that does not run yet (it is being written) offers no labels.
            let found = if let Want::LogLabel { .. } = ctx.want {
                api.get_json::<PromEnvelope<LokiData>>(&url)
                    .await
                    .and_then(PromEnvelope::into_result)
                    .map(|(d, _)| line_labels(d))
            } else {
                api.get_json::<PromEnvelope<Vec<String>>>(&url)
                    .await
                    .and_then(PromEnvelope::into_result)
                    .map(|(v, _)| v)
            };
            // A failed request is asked again at the next keystroke; an answer is kept.
            // The box may be gone (the page moved on) by the time the answer comes.
            let found = match found {
                Ok(found) => {
                    cache.try_update_value(|c| {
                        c.insert(url, found.clone());
                    });
                    found
                }
                Err(_) => Vec::new(),
            };
            if generation.try_get_value() == Some(this) {
                show(ctx, &found);
            }
        });
    };
    let take = move |i: usize| {
        let (Some(el), Some(ctx)) = (input.get_untracked(), current.get_value()) else {
            return;
        };
        let Some(choice) = items.with_untracked(|v| v.get(i).cloned()) else {
            return;
        };
        let text = el.value();
        close();
        if let Some((next, cursor)) = accept(&text, &ctx, &choice) {
            el.set_value(&next);
            let at = utf16_offset(&next, cursor) as u32;
            let _ = el.set_selection_range(at, at);
        }
        let _ = el.focus();
    };
    let keydown = move |ev: leptos::ev::KeyboardEvent| {
        let n = items.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" if n > 0 => {
                ev.prevent_default();
                active.update(|a| *a = (*a + 1) % n);
            }
            "ArrowUp" if n > 0 => {
                ev.prevent_default();
                active.update(|a| *a = (*a + n - 1) % n);
            }
            "Enter" | "Tab" if n > 0 => {
                ev.prevent_default();
                take(active.get_untracked());
            }
            "Escape" if n > 0 => {
                ev.prevent_default();
                close();
            }
            "Enter" if !ev.shift_key() => {
                ev.prevent_default();
                if let Some(form) = input.get_untracked().and_then(|el| el.form()) {
                    let _ = form.request_submit();
                }
            }
            _ => {}
        }
    };
    let expanded = move || {
        if items.with(Vec::is_empty) {
            "false"
        } else {
            "true"
        }
    };
    let option_id = {
        let list_id = list_id.clone();
        move |i: usize| format!("{list_id}-{i}")
    };
    let active_descendant = {
        let option_id = option_id.clone();
        move || (!items.with(Vec::is_empty)).then(|| option_id(active.get()))
    };
    view! {
        <div class="querybox">
            <textarea
                node_ref=input
                name=name
                rows="2"
                spellcheck="false"
                autocomplete="off"
                placeholder=placeholder
                role="combobox"
                aria-autocomplete="list"
                aria-controls=list_id.clone()
                aria-expanded=expanded
                aria-activedescendant=active_descendant
                on:input={
                    let refresh = refresh.clone();
                    move |_| refresh()
                }
                on:click=move |_| refresh()
                on:keydown=keydown
                on:blur=move |_| close()
            >
                {value}
            </textarea>
            <ul class="suggestions" role="listbox" id=list_id hidden=move || items.with(Vec::is_empty)>
                {move || {
                    items
                        .get()
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let selected = move || active.get() == i;
                            view! {
                                <li
                                    role="option"
                                    id=option_id(i)
                                    class:active=selected
                                    aria-selected=move || if selected() { "true" } else { "false" }
                                    // Before the text area's blur closes the list.
                                    on:mousedown=move |ev| {
                                        ev.prevent_default();
                                        take(i);
                                    }
                                >
                                    {s}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `▮` marks the cursor (or, in queries without pipes, `|`).
    fn at(text_with_cursor: &str, lang: Lang) -> Option<Context> {
        let mark = if text_with_cursor.contains('▮') {
            '▮'
        } else {
            '|'
        };
        let cursor = text_with_cursor.find(mark).expect("a mark for the cursor");
        let text = text_with_cursor.replacen(mark, "", 1);
        context(&text, cursor, lang)
    }

    fn want(text_with_cursor: &str, lang: Lang) -> Option<(Want, String)> {
        at(text_with_cursor, lang).map(|c| (c.want, c.prefix))
    }

    fn label(metric: Option<&str>) -> Want {
        Want::LabelName {
            metric: metric.map(str::to_string),
        }
    }

    fn value(l: &str, metric: Option<&str>) -> Want {
        Want::LabelValue {
            label: l.into(),
            metric: metric.map(str::to_string),
        }
    }

    #[test]
    fn promql_words_are_metric_names_labels_or_values_by_position() {
        use Lang::PromQL as P;
        assert_eq!(
            want("http_req|", P),
            Some((Want::MetricName, "http_req".into()))
        );
        assert_eq!(
            want("rate(http|[5m])", P),
            Some((Want::MetricName, "http".into()))
        );
        assert_eq!(want("up{|", P), Some((label(Some("up")), "".into())));
        assert_eq!(
            want("up{job=\"a\", ins|}", P),
            Some((label(Some("up")), "ins".into()))
        );
        assert_eq!(want("{jo|", P), Some((label(None), "jo".into())));
        assert_eq!(
            want("up{job=\"ap|\"}", P),
            Some((value("job", Some("up")), "ap".into()))
        );
        assert_eq!(
            want("up{job=~'a.*|", P),
            Some((value("job", Some("up")), "a.*".into()))
        );
        assert_eq!(
            want("up{job!=\"|", P),
            Some((value("job", Some("up")), "".into()))
        );
        assert_eq!(want("sum by (|) (up)", P), Some((label(None), "".into())));
        assert_eq!(
            want("sum without(instance, jo|) (up)", P),
            Some((label(None), "jo".into()))
        );
        assert_eq!(
            want("a / on(inst|) b", P),
            Some((label(None), "inst".into()))
        );
    }

    #[test]
    fn nothing_is_offered_inside_durations_numbers_comments_or_after_spaces() {
        use Lang::PromQL as P;
        assert_eq!(want("rate(up[5|", P), None);
        assert_eq!(want("up > 12|", P), None);
        assert_eq!(want("up |", P), None);
        assert_eq!(want("|", P), None);
        assert_eq!(want("up # a comm|", P), None);
        assert_eq!(want("up{job=|", P), None, "a value needs its quote");
        assert_eq!(
            want("up{job=\"a\"} and up|", P),
            Some((Want::MetricName, "up".into()))
        );
        assert_eq!(
            want("sum(rate(x[5m])) by (|", P),
            Some((label(None), "".into()))
        );
        // A closed string with an escaped quote does not confuse the scan.
        assert_eq!(
            want("up{a=\"x\\\"}\", |", P),
            Some((label(Some("up")), "".into()))
        );
    }

    #[test]
    fn logql_offers_stream_labels_and_values_only() {
        use Lang::LogQL as L;
        assert_eq!(
            want("{service_name=\"che|", L),
            Some((value("service_name", None), "che".into()))
        );
        assert_eq!(want("{lev|", L), Some((label(None), "lev".into())));
        assert_eq!(
            want("{a=\"b\"} |= \"err▮\"", L),
            None,
            "a line filter is free text"
        );
        assert_eq!(
            want("{a=\"b\"} | jso▮", L),
            Some((log_label("{a=\"b\"}", true), "jso".into()))
        );
        assert_eq!(
            want("{a=\"b\"} | json | line_format \"{{.a}}\" |lab▮", L),
            Some((
                log_label("{a=\"b\"} | json | line_format \"{{.a}}\"", true),
                "lab".into()
            ))
        );
        assert_eq!(want("{a=\"b\"} | ▮", L), None, "nothing typed yet");
        assert_eq!(want("{a=\"b\"} | json | duration > 10▮", L), None);
        assert_eq!(want("{a=\"b\"} | json | level != er▮", L), None);
        assert_eq!(
            want("cou▮", L),
            Some((Want::Keyword(LOGQL_FUNCTIONS), "cou".into()))
        );
        assert_eq!(
            want("sum by (level) (rat▮", L),
            Some((Want::Keyword(LOGQL_FUNCTIONS), "rat".into()))
        );
        assert_eq!(
            want("sum by (lev|) (count_over_time({a=\"b\"}[1m]))", L),
            Some((label(None), "lev".into()))
        );
    }

    fn log_label(query: &str, stages: bool) -> Want {
        Want::LogLabel {
            query: query.into(),
            stages,
        }
    }

    #[test]
    fn logql_offers_the_labels_a_pipeline_extracts_where_a_label_is_written() {
        use Lang::LogQL as L;
        let q = "{app=\"shop\"} |= \"GET\" | logfmt";
        assert_eq!(
            want(&format!("{q} | sta▮"), L),
            Some((log_label(q, true), "sta".into()))
        );
        assert_eq!(
            want(&format!("{q} | keep sta▮"), L),
            Some((log_label(q, false), "sta".into()))
        );
        assert_eq!(
            want(&format!("{q} | drop a, st▮"), L),
            Some((log_label(q, false), "st".into()))
        );
        assert_eq!(want(&format!("{q} | drop a b▮"), L), None);
        assert_eq!(
            want(&format!("sum by (x) (count_over_time({q} | unwrap dur▮"), L),
            Some((log_label(q, false), "dur".into()))
        );
        assert_eq!(
            want(&format!("rate({q} | status >= 500 or le▮"), L),
            None,
            "not the first word of a stage"
        );
        assert_eq!(want("{a=\"b\"} |= \"x\" |~ \"y\" ▮", L), None);
        assert_eq!(
            want("{a=\"b\"} |~ \"y\" | p▮", L),
            Some((log_label("{a=\"b\"} |~ \"y\"", true), "p".into()))
        );
        assert_eq!(
            source(&log_label(q, true), L),
            Some(
                "/loki/api/v1/query_range?query=%7Bapp%3D%22shop%22%7D%20%7C%3D%20%22GET%22%20%7C%20logfmt&limit=50&direction=backward"
                    .into()
            )
        );
    }

    #[test]
    fn labels_of_lines_include_metadata_and_extracted_ones() {
        let data: LokiData = serde_json::from_value(serde_json::json!({
            "resultType": "streams",
            "result": [
                {"stream": {"app": "shop", "status": "200"}, "values": [["1", "a"]]},
                {"stream": {"app": "shop", "__error__": "LogfmtParserErr"},
                 "values": [["2", "b", {"trace_id": "ab"}]]}
            ]
        }))
        .expect("streams");
        assert_eq!(line_labels(data), vec!["app", "status", "trace_id"]);
    }

    #[test]
    fn taking_a_candidate_replaces_the_word_and_closes_the_value() {
        let text = "rate(http_req[5m])";
        let ctx = context(text, 9, Lang::PromQL).expect("context");
        assert_eq!(
            (ctx.start, ctx.end),
            (5, 13),
            "the whole word, also after the cursor"
        );
        let (next, cursor) = accept(text, &ctx, "http_requests_total").expect("accepted");
        assert_eq!(next, "rate(http_requests_total[5m])");
        assert_eq!(cursor, 24);

        let text = "up{job=\"ap\"}";
        let ctx = context(text, 10, Lang::PromQL).expect("context");
        assert_eq!(
            (ctx.start, ctx.end),
            (8, 11),
            "the value and its closing quote"
        );
        let (next, cursor) = accept(text, &ctx, "api \"v2\"").expect("accepted");
        assert_eq!(next, "up{job=\"api \\\"v2\\\"\"}");
        assert_eq!(&next[cursor..], "}");

        let text = "{service_name=\"pay";
        let ctx = context(text, text.len(), Lang::LogQL).expect("context");
        let (next, cursor) = accept(text, &ctx, "payments").expect("accepted");
        assert_eq!(next, "{service_name=\"payments\"");
        assert_eq!(cursor, next.len());

        // The text changed under the list (shorter now): nothing is spliced.
        assert_eq!(accept("up", &ctx, "payments"), None);
    }

    #[test]
    fn cursor_offsets_convert_between_utf16_and_bytes() {
        let s = "é{a=\"😀x";
        assert_eq!(byte_offset(s, 0), 0);
        assert_eq!(byte_offset(s, 1), 2);
        assert_eq!(byte_offset(s, 7), 10, "after the emoji's two units");
        assert_eq!(byte_offset(s, 99), s.len());
        assert_eq!(utf16_offset(s, 10), 7);
        assert_eq!(utf16_offset(s, s.len()), 8);
        // A cursor inside a multi-byte character never splits it.
        let ctx = context(s, byte_offset(s, 8), Lang::LogQL).expect("context");
        assert_eq!(ctx.prefix, "😀x");
    }

    #[test]
    fn candidates_starting_with_the_prefix_come_before_those_containing_it() {
        let c: Vec<String> = ["a_up", "UP_total", "down", "up", "x_up_y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            rank(&c, "up", 10),
            ["UP_total", "a_up", "x_up_y"],
            "the word itself is left out"
        );
        assert_eq!(rank(&c, "", 2), ["a_up", "UP_total"]);
        assert_eq!(rank(&c, "zzz", 10), Vec::<String>::new());
    }

    #[test]
    fn candidates_come_from_the_matching_api() {
        assert_eq!(
            source(&Want::MetricName, Lang::PromQL),
            Some("/api/v1/label/__name__/values".into())
        );
        assert_eq!(
            source(&label(Some("up")), Lang::PromQL),
            Some("/api/v1/labels?match[]=up".into())
        );
        assert_eq!(
            source(&value("job", Some("a:b")), Lang::PromQL),
            Some("/api/v1/label/job/values?match[]=a%3Ab".into())
        );
        assert_eq!(
            source(&label(None), Lang::LogQL),
            Some("/loki/api/v1/labels".into())
        );
        assert_eq!(
            source(&value("level", None), Lang::LogQL),
            Some("/loki/api/v1/label/level/values".into())
        );
        assert_eq!(source(&Want::Keyword(LOGQL_STAGES), Lang::LogQL), None);
    }
}
