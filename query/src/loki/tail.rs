//! `GET /loki/api/v1/tail`: a live tail over a WebSocket. After the upgrade the server
//! sends the newest `limit` lines since `start`, then every second the lines that were
//! stored since, as `{"streams": [...], "dropped_entries": null}` text frames.
//!
//! Lines are found by polling storage over a window that reaches `LOOKBACK` behind the
//! newest poll, and lines already sent are remembered for that long, so a line that is
//! stored up to `LOOKBACK` after its own timestamp is still sent once; later ones are not.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};

use super::*;
use crate::logql::Tail;

const POLL: Duration = Duration::from_secs(1);
const LOOKBACK_NS: i64 = 5 * NS_PER_S;
/// Loki's limit on `delay_for`, in seconds.
const MAX_DELAY_S: i64 = 5;

pub(super) async fn tail(
    State(api): State<LokiApi>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &headers, &Bytes::new());
    let query = query_param(&p)?;
    let limit = limit(&p)?;
    let delay_s = match p.get("delay_for").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => s.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
            ApiError::bad(format!(
                "invalid delay_for parameter {s:?}: not a number of seconds"
            ))
        })?,
    };
    if delay_s > MAX_DELAY_S {
        return Err(ApiError::bad(format!(
            "delay_for can't be greater than {MAX_DELAY_S}"
        )));
    }
    let start = time_param(&p, "start", now_ns().saturating_sub(3600 * NS_PER_S))?;
    let tail = api.engine.tail(query)?;
    let ws = ws.map_err(|e| ApiError::bad(format!("tail needs a WebSocket connection: {e}")))?;
    Ok(ws.on_upgrade(move |socket| follow(api, tail, socket, start, limit, delay_s * NS_PER_S)))
}

async fn follow(
    api: LokiApi,
    mut tail: Tail,
    mut socket: WebSocket,
    start: i64,
    limit: usize,
    delay_ns: i64,
) {
    let mut from = start;
    let mut first = true;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
            _ = tick.tick() => {}
        }
        let end = now_ns().saturating_sub(delay_ns);
        if end <= from {
            continue;
        }
        // The first answer is the newest `limit` lines; later ones are everything new.
        let (direction, max) = if first {
            (Direction::Backward, limit)
        } else {
            (Direction::Forward, MAX_LIMIT)
        };
        let span = Span {
            start_ns: from,
            end_ns: end,
        };
        let polled = tokio::time::timeout(
            api.timeout,
            api.engine.tail_poll(&mut tail, span, direction, max),
        )
        .await;
        let streams = match polled {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return close(socket, &e.to_string()).await,
            Err(_) => return close(socket, "tail query timed out").await,
        };
        let sent = streams.iter().map(|s| s.entries.len()).sum::<usize>();
        let oldest = streams
            .iter()
            .filter_map(|s| s.entries.first().map(|(t, _)| *t))
            .min();
        if sent > 0 {
            let frame = json!({"streams": streams_json(&streams), "dropped_entries": null});
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        from = end.saturating_sub(LOOKBACK_NS).max(start);
        if first && sent >= max {
            // Lines older than the newest `limit` were left out on purpose.
            from = from.max(oldest.unwrap_or(from));
        }
        first = false;
    }
}

async fn close(mut socket: WebSocket, reason: &str) {
    // Close reasons are limited to 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 120 {
        reason.pop();
    }
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::ERROR,
            reason: reason.into(),
        })))
        .await;
}
