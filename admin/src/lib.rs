//! sluice control plane (being built).
