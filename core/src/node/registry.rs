//! Every task type the node runs: its manifest `type`, the function that reads its keys, and
//! the one that makes its driver. The one place a new task type is registered (see
//! `docs/drivers.md`); the manifest's list of types comes from here too.

use super::driver::Driver;
use super::{
    cron_tasks, fs_tasks, manual_scheduler, native_server, native_sink, raw_server, sinks,
    timer_tasks, zmq_server,
};
use crate::manifest::keys::{Ctx, Obj, Problems};
use crate::manifest::{Task, TaskKind};

/// Reads a task's keys (all but `type`) into its validated settings, reporting every problem.
pub(crate) type Parse = fn(&mut Obj<'_>, &Ctx<'_>, &mut Problems) -> TaskKind;

/// Makes the driver of one task from its settings; `None` if they are not of its type (a
/// manifest built by hand).
type Make = fn(&Task) -> Option<Box<dyn Driver>>;

struct TaskType {
    name: &'static str,
    parse: Parse,
    make: Make,
}

const fn task(name: &'static str, parse: Parse, make: Make) -> TaskType {
    TaskType { name, parse, make }
}

/// The task types, in the order manifests' error messages list them.
const TYPES: &[TaskType] = &[
    task(
        "recurring-timer",
        timer_tasks::parse_recurring,
        timer_tasks::recurring,
    ),
    task(
        "drifting-timer",
        timer_tasks::parse_drifting,
        timer_tasks::drifting,
    ),
    task("cron", cron_tasks::parse, cron_tasks::make),
    task(
        "manual-scheduler",
        manual_scheduler::parse,
        manual_scheduler::make,
    ),
    task("filesystem-monitor", fs_tasks::parse, fs_tasks::make),
    task("zeromq-server", zmq_server::parse, zmq_server::make),
    task("native-server", native_server::parse, native_server::make),
    task("zeromq-sink", sinks::parse_sink, sinks::make),
    task("native-sink", native_sink::parse, native_sink::make),
    task("zeromq-subscriber", sinks::parse_subscriber, sinks::make),
    task("raw-server", raw_server::parse, raw_server::make),
];

/// The names of [`TYPES`], for the manifest.
pub(crate) const TASK_TYPES: &[&str] = &names::<{ TYPES.len() }>();

const fn names<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = TYPES[i].name;
        i += 1;
    }
    out
}

/// The key reader of task type `name`, if there is such a type.
pub(crate) fn parser(name: &str) -> Option<Parse> {
    TYPES.iter().find(|t| t.name == name).map(|t| t.parse)
}

/// The driver for `task`, if its type has one.
pub(super) fn driver(task: &Task) -> Option<Box<dyn Driver>> {
    let name = task.kind.type_name();
    let found = TYPES.iter().find(|t| t.name == name)?;
    (found.make)(task)
}
