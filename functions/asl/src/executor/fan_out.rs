//! What Map and Parallel states do alike in JSONPath and JSONata: run their branches or
//! iterations in a child scope of variables, and book the service's history events around
//! them. Only how each iteration's input is built differs by query language.

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::{MapItem, Runner, Visit};
use crate::model::{MapState, ParallelState};
use crate::redrive;
use crate::Failure;

impl Runner {
    /// One attempt of a Parallel state: every branch on `input` at once, the results in
    /// branch order; the first failure fails them all.
    pub(super) async fn run_branches(
        &self,
        visit: Visit<'_>,
        parallel: &ParallelState,
        input: Value,
    ) -> Result<Value, Failure> {
        self.service_history.record(&["ParallelStateStarted"])?;
        // One scope for all branches: each gets a cheap handle on the same outer variables.
        let scope = visit.vars.inner();
        let branches = parallel.branches.iter().enumerate().map(|(index, branch)| {
            let input = input.clone();
            let vars = scope.clone();
            let keys = redrive::branch_scope(visit.key, index);
            async move { self.run_machine(branch, input, None, vars, &keys).await }
        });
        let result = futures::future::try_join_all(branches)
            .await
            .map(Value::Array);
        self.service_history.record(&[if result.is_ok() {
            "ParallelStateSucceeded"
        } else {
            "ParallelStateFailed"
        }])?;
        result
    }

    /// One attempt of an inline Map: the item processor over every item, at most `limit`
    /// at a time, the results in item order. `item_input` builds an iteration's input from
    /// the item's visit (whose `item` is `$$.Map.Item`) and the item itself.
    pub(super) async fn run_iterations<F>(
        &self,
        visit: Visit<'_>,
        map: &MapState,
        items: Vec<Value>,
        limit: usize,
        item_input: F,
    ) -> Result<Value, Failure>
    where
        F: Fn(Visit<'_>, Value) -> Result<Value, Failure>,
    {
        tracing::info!(state = %visit.name, items = items.len(), max_concurrency = limit, "map fan-out");
        self.service_history.record(&["MapStateStarted"])?;
        // One scope for all iterations, as for Parallel branches.
        let scope = visit.vars.inner();
        let iterations = items.into_iter().enumerate().map(|(index, value)| {
            let item: MapItem = Some((index, value.clone()));
            let input = item_input(
                Visit {
                    item: &item,
                    ..visit
                },
                value,
            );
            let vars = scope.clone();
            let keys = redrive::iteration_scope(visit.key, index);
            async move {
                self.service_history.record(&["MapIterationStarted"])?;
                let result = self
                    .run_machine(&map.item_processor, input?, item, vars, &keys)
                    .await;
                self.service_history.record(&[if result.is_ok() {
                    "MapIterationSucceeded"
                } else {
                    "MapIterationFailed"
                }])?;
                result
            }
        });
        let result = futures::stream::iter(iterations)
            .buffered(limit)
            .try_collect::<Vec<_>>()
            .await
            .map(Value::Array);
        self.service_history.record(&[if result.is_ok() {
            "MapStateSucceeded"
        } else {
            "MapStateFailed"
        }])?;
        result
    }
}
