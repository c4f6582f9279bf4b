//! Every task type the node runs: its manifest `type`, the function that reads its keys, and
//! the one that makes its driver. The table itself is one line per driver module in
//! `node/mod.rs` ([`drivers!`]), the one place a new task type is registered (see
//! `docs/drivers.md`); the manifest's list of types comes from here too.

use super::driver::Driver;
use crate::manifest::keys::{Ctx, Obj, Problems};
use crate::manifest::{Task, TaskKind};

/// Declares the driver modules and the table of task types (used once, in `node/mod.rs`).
macro_rules! drivers {
    ($($module:ident => [$(($name:literal, $parse:ident, $make:ident)),+ $(,)?]),+ $(,)?) => {
        $(mod $module;)+

        /// Every task type, in the order manifests' error messages list them.
        const TASK_TYPE_TABLE: &[registry::TaskType] = &[
            $($(registry::TaskType {
                name: $name,
                parse: $module::$parse,
                make: $module::$make,
            },)+)+
        ];
    };
}
pub(super) use drivers;

/// Reads a task's keys (all but `type`) into its validated settings, reporting every problem.
pub(crate) type Parse = fn(&mut Obj<'_>, &Ctx<'_>, &mut Problems) -> TaskKind;

/// Makes the driver of one task from its settings; `None` if they are not of its type (a
/// manifest built by hand).
pub(super) type Make = fn(&Task) -> Option<Box<dyn Driver>>;

/// One task type: its manifest `type`, its key reader, its driver maker.
pub(super) struct TaskType {
    pub name: &'static str,
    pub parse: Parse,
    pub make: Make,
}

const TYPES: &[TaskType] = super::TASK_TYPE_TABLE;

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
