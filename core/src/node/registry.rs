//! Every task type the node runs, by its manifest `type`: the one place a new driver is
//! registered (see `docs/drivers.md`).

use super::driver::Driver;
use super::{
    cron_tasks, fs_tasks, manual_scheduler, native_server, native_sink, raw_server, sinks,
    timer_tasks, zmq_server,
};
use crate::manifest::Task;

/// Makes the driver of one task from its validated settings; `None` if the settings are not
/// of its type (a manifest built by hand).
type Make = fn(&Task) -> Option<Box<dyn Driver>>;

/// Task types and their drivers.
const DRIVERS: &[(&str, Make)] = &[
    ("recurring-timer", timer_tasks::recurring),
    ("drifting-timer", timer_tasks::drifting),
    ("cron", cron_tasks::make),
    ("manual-scheduler", manual_scheduler::make),
    ("filesystem-monitor", fs_tasks::make),
    ("zeromq-server", zmq_server::make),
    ("native-server", native_server::make),
    ("zeromq-sink", sinks::make),
    ("native-sink", native_sink::make),
    ("zeromq-subscriber", sinks::make),
    ("raw-server", raw_server::make),
];

/// The driver for `task`, if its type has one.
pub(super) fn driver(task: &Task) -> Option<Box<dyn Driver>> {
    let name = task.kind.type_name();
    let (_, make) = DRIVERS.iter().find(|(n, _)| *n == name)?;
    make(task)
}
