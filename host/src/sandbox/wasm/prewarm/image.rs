//! A built instance's state, to restore into a fresh instance of the instrumented module.
//!
//! The audit must run images built with different entropy without turning each into a module
//! (a snapshot and a compile of ~180 MB each): the instrumented module's only state is its one
//! memory and its one mutable global, so copying both in recreates the built instance.

use wasmtime::{Instance, Store, Val};

use crate::sandbox::wasm::store::GuestState;

/// Wizer's export of the only mutable global, `__stack_pointer` (global 0).
pub(super) const STACK_POINTER: &str = "__wizer_global_0";

/// A memory image and stack pointer taken from a built instance, to restore into another.
pub(crate) struct Image {
    pub(super) memory: Vec<u8>,
    pub(super) stack_pointer: i32,
}

impl Image {
    /// Makes `instance` (of the instrumented module) look like the instance the image came from:
    /// the one memory and the one mutable global are all the state the module has.
    pub(crate) fn restore(
        &self,
        store: &mut Store<GuestState>,
        instance: &Instance,
    ) -> wasmtime::Result<()> {
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| wasmtime::format_err!("the guest exports no memory"))?;
        let have = memory.data_size(&*store);
        if self.memory.len() > have {
            memory.grow(
                &mut *store,
                ((self.memory.len() - have) as u64).div_ceil(1 << 16),
            )?;
        }
        memory.data_mut(&mut *store)[..self.memory.len()].copy_from_slice(&self.memory);
        instance
            .get_global(&mut *store, STACK_POINTER)
            .ok_or_else(|| wasmtime::format_err!("the module exports no {STACK_POINTER}"))?
            .set(&mut *store, Val::I32(self.stack_pointer))
    }
}
