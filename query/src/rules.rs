//! Alerting and recording rules: Prometheus rule files (`file`), their templates
//! (`template`), evaluation with Prometheus semantics (`group`), `promtool test
//! rules`-style unit tests (`unittest`), the group runner and its state file
//! (`manager`, `state`), and the HTTP API (`api`).

use std::sync::Arc;

use async_trait::async_trait;
use signalbox_storage::{Labels, MetricsReader};

use crate::logql::{LogqlEngine, LogqlResult};
use crate::promql::{Engine, QueryValue};

pub mod api;
pub mod file;
pub mod group;
pub mod manager;
pub mod state;
pub mod template;
pub mod unittest;

pub use file::{GroupSpec, Lang, RuleKind, RuleSpec, load_files, parse_rules};
pub use group::{Alert, AlertState, External, GroupState, Health, RuleQuerier, RuleState};
pub use manager::{ManagerOptions, RuleManager};

/// Runs rule expressions on the query engines: PromQL over a metrics reader, LogQL
/// (metric queries) when a logs engine is given.
pub struct Querier {
    promql: Engine,
    reader: Arc<dyn MetricsReader>,
    logql: Option<LogqlEngine>,
}

impl Querier {
    pub fn new(
        promql: Engine,
        reader: Arc<dyn MetricsReader>,
        logql: Option<LogqlEngine>,
    ) -> Querier {
        Querier {
            promql,
            reader,
            logql,
        }
    }
}

#[async_trait]
impl RuleQuerier for Querier {
    async fn query(&self, lang: Lang, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match lang {
            Lang::PromQL => {
                let r = self
                    .promql
                    .instant(self.reader.as_ref(), expr, t_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                match r.value {
                    QueryValue::Vector(v) => v
                        .into_iter()
                        .map(|(l, _, v)| match v.float() {
                            Some(f) => Ok((l, f)),
                            None => Err(format!(
                                "rule result {l} is a native histogram; rules take float results only"
                            )),
                        })
                        .collect(),
                    QueryValue::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
                    QueryValue::String { .. } => {
                        Err("rule result is not a vector or scalar: string".into())
                    }
                    QueryValue::Matrix(_) => {
                        Err("rule result is not a vector or scalar: matrix".into())
                    }
                }
            }
            Lang::LogQL => {
                let Some(engine) = &self.logql else {
                    return Err("LogQL rules need the logs engine".into());
                };
                let (r, _) = engine
                    .query_instant(expr, t_ms.saturating_mul(1_000_000))
                    .await
                    .map_err(|e| e.to_string())?;
                match r {
                    LogqlResult::Vector(v) => Ok(v.into_iter().map(|(l, _, f)| (l, f)).collect()),
                    LogqlResult::Scalar(_, v) => Ok(vec![(Labels::default(), v)]),
                    _ => Err("rule result is not a vector or scalar".into()),
                }
            }
        }
    }
}
