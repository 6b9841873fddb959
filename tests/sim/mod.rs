//! The simulation's parts.

#[cfg(test)]
mod proxy_modes;
