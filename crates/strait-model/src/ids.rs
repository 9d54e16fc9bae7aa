//! Small copyable handles into a [`crate::Mesh`].

/// Index of a cluster in [`crate::Mesh::clusters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u16);

/// An object: its cluster and its index in that cluster's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjId {
    pub cluster: ClusterId,
    pub index: u32,
}

/// Index of a workload in [`crate::Mesh::workloads`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId(pub u32);

/// Index of a service instance in [`crate::Registry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);
