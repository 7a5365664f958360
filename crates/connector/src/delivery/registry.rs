//! Instances and their heartbeats, so a crashed instance's work is resumed in seconds rather
//! than after its leases expire.
//!
//! Each serving instance registers its lease owners (the engine's and the sync path's) and
//! renews them every [`Registry::interval`]. Every tick also looks for owners whose heartbeat is
//! older than [`DEAD_AFTER`] intervals: their leases expire at once (the claim then takes them
//! back) and they are forgotten. Acks stay fenced by lease owner, so an instance that was only
//! slow, not dead, cannot finish what was taken from it; it registers again on its next tick.
//! Heartbeats are written with each instance's clock: instances are assumed NTP-synced, as the
//! shared rate limiter already assumes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Notifier;
use crate::store::{Clock, Store};

/// Missed intervals after which an owner is dead.
pub const DEAD_AFTER: u32 = 3;

pub struct Registry {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The lease owners of this instance.
    pub owners: Vec<String>,
    pub interval: Duration,
    /// Woken when leases were taken back, so they are claimed at once.
    pub notifier: Notifier,
}

pub struct RegistryHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Registry {
    pub fn start(self) -> RegistryHandle {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => self.tick().await,
                    _ = stopped.changed() => break,
                }
            }
            for owner in &self.owners {
                if let Err(e) = self.store.deregister(owner).await {
                    tracing::warn!(error = %e, owner, "deregistering failed");
                }
            }
        });
        RegistryHandle { stop, task }
    }

    async fn tick(&self) {
        for owner in &self.owners {
            if let Err(e) = self.store.heartbeat(owner).await {
                tracing::warn!(error = %e, owner, "heartbeat failed");
                metrics::counter!("dtc_instance_heartbeat_errors_total").increment(1);
            }
        }
        let dead_for = self.interval * DEAD_AFTER;
        let cutoff = self.clock.now()
            - chrono::Duration::from_std(dead_for).unwrap_or(chrono::Duration::seconds(6));
        match self.store.take_back_dead(cutoff).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    leases = n,
                    "took back the leases of an instance that stopped"
                );
                metrics::counter!("dtc_leases_taken_back_total").increment(n);
                self.notifier.notify();
            }
            Err(e) => tracing::warn!(error = %e, "taking back dead instances' leases failed"),
        }
    }
}

impl RegistryHandle {
    /// Stop heartbeating and deregister (after the engine released its leases).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
