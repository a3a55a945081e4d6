//! Live tail of a LogQL query: the browser opens Loki's `/loki/api/v1/tail` WebSocket
//! and shows each line as the server sends it, newest first.

use crate::api::{LogLine, LokiStream, encode};
use crate::pages::logs::LogLines;
use leptos::prelude::*;
use serde::Deserialize;

/// Most lines kept on the page; older ones scroll off.
pub const MAX_LINES: usize = 1000;

/// One frame of the tail socket.
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(default)]
    streams: Vec<LokiStream>,
}

/// The lines of one frame of `/loki/api/v1/tail`.
pub fn frame_lines(text: &str) -> Result<Vec<LogLine>, String> {
    let frame: Frame =
        serde_json::from_str(text).map_err(|e| format!("unexpected tail message: {e}"))?;
    Ok(frame
        .streams
        .into_iter()
        .flat_map(LokiStream::into_lines)
        .collect())
}

/// `shown` (newest first) with `new` lines added, newest first, at most `max` kept.
pub fn merge(shown: &mut Vec<LogLine>, mut new: Vec<LogLine>, max: usize) {
    new.sort_by_key(|l| std::cmp::Reverse(l.ts_ns));
    new.append(shown);
    new.truncate(max);
    *shown = new;
}

/// The path and query of the tail socket for `query` (`limit` lines to begin with).
pub fn tail_path(query: &str, limit: usize) -> String {
    format!("/loki/api/v1/tail?query={}&limit={limit}", encode(query))
}

/// A button that starts and stops a live tail of `query`, and the lines it brought.
#[component]
pub fn LiveTail(query: String) -> impl IntoView {
    let running = RwSignal::new(false);
    let lines = RwSignal::new(Vec::<LogLine>::new());
    let status = RwSignal::new(String::new());
    let toggle = move |_| {
        if running.get_untracked() {
            socket::stop();
            running.set(false);
            status.set("Stopped.".into());
        } else {
            lines.set(Vec::new());
            match socket::start(&tail_path(&query, 100), lines, status, running) {
                Ok(()) => {
                    running.set(true);
                    status.set("Connecting…".into());
                }
                Err(e) => status.set(e),
            }
        }
    };
    on_cleanup(socket::stop);
    view! {
        <section class="live-tail" aria-live="polite">
            <div class="live-head">
                <button type="button" class="live-toggle" class:on=move || running.get() on:click=toggle>
                    {move || if running.get() { "Stop live tail" } else { "Live tail" }}
                </button>
                <span class="live-status">{move || status.get()}</span>
            </div>
            {move || {
                let shown = lines.get();
                (!shown.is_empty()).then(|| view! { <LogLines lines=shown/> })
            }}
        </section>
    }
}

/// The one tail socket of the page (in the browser; the server never opens one).
#[cfg(feature = "hydrate")]
mod socket {
    use super::{MAX_LINES, frame_lines, merge};
    use crate::api::LogLine;
    use leptos::prelude::*;
    use std::cell::RefCell;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

    struct Open {
        ws: WebSocket,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_open: Closure<dyn FnMut(Event)>,
        _on_close: Closure<dyn FnMut(CloseEvent)>,
    }

    thread_local! {
        static OPEN: RefCell<Option<Open>> = const { RefCell::new(None) };
    }

    pub(super) fn start(
        path: &str,
        lines: RwSignal<Vec<LogLine>>,
        status: RwSignal<String>,
        running: RwSignal<bool>,
    ) -> Result<(), String> {
        stop();
        let location = web_sys::window().ok_or("no window")?.location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        let host = location
            .host()
            .map_err(|_| "no host in the page's address")?;
        let ws = WebSocket::new(&format!("{scheme}://{host}{path}"))
            .map_err(|e| format!("cannot open the live tail: {e:?}"))?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else {
                return;
            };
            match frame_lines(&text) {
                Ok(new) => {
                    lines.update(|shown| merge(shown, new, MAX_LINES));
                    let n = lines.with_untracked(Vec::len);
                    status.set(format!("Live: {n} lines, newest first."));
                }
                Err(e) => status.set(e),
            }
        });
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            status.set("Live: waiting for lines…".into());
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            running.set(false);
            let reason = ev.reason();
            status.set(if reason.is_empty() {
                format!("Live tail closed (code {}).", ev.code())
            } else {
                format!("Live tail closed: {reason}")
            });
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        OPEN.with(|o| {
            *o.borrow_mut() = Some(Open {
                ws,
                _on_message: on_message,
                _on_open: on_open,
                _on_close: on_close,
            })
        });
        Ok(())
    }

    pub(super) fn stop() {
        if let Some(open) = OPEN.with(|o| o.borrow_mut().take()) {
            open.ws.set_onmessage(None);
            open.ws.set_onopen(None);
            open.ws.set_onclose(None);
            let _ = open.ws.close();
        }
    }
}

/// Without a browser there is no socket to open.
#[cfg(not(feature = "hydrate"))]
mod socket {
    use crate::api::LogLine;
    use leptos::prelude::*;

    pub(super) fn start(
        _path: &str,
        _lines: RwSignal<Vec<LogLine>>,
        _status: RwSignal<String>,
        _running: RwSignal<bool>,
    ) -> Result<(), String> {
        Err("live tail needs the page's script".into())
    }

    pub(super) fn stop() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_frames_become_lines_newest_first_and_old_ones_scroll_off() {
        let mut shown = frame_lines(
            r#"{"streams":[{"stream":{"level":"info"},"values":[["1","a"],["3","c"]]},{"stream":{"level":"error"},"values":[["2","b"]]}],"dropped_entries":null}"#,
        )
        .expect("frame");
        let first = std::mem::take(&mut shown);
        merge(&mut shown, first, 10);
        let text: Vec<&str> = shown.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(text, ["c", "b", "a"]);
        assert_eq!(shown[1].labels["level"], "error");
        let next = frame_lines(r#"{"streams":[{"stream":{},"values":[["4","d"],["5","e"]]}]}"#)
            .expect("frame");
        merge(&mut shown, next, 4);
        let text: Vec<&str> = shown.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(text, ["e", "d", "c", "b"]);
        assert!(frame_lines("not json").is_err());
    }

    #[test]
    fn the_socket_path_carries_the_query() {
        assert_eq!(
            tail_path("{a=\"b\"} |= \"x y\"", 100),
            "/loki/api/v1/tail?query=%7Ba%3D%22b%22%7D%20%7C%3D%20%22x%20y%22&limit=100"
        );
    }
}
