//! `assert_eventually!`: poll a condition until it holds or a bounded patience runs out.

/// Polls `$cond` every 20 ms for up to `$patience` (default 5 s); panics with the condition's text if it never held.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr) => {
        $crate::assert_eventually!($cond, ::std::time::Duration::from_secs(5))
    };
    ($cond:expr, $patience:expr) => {{
        let deadline = ::std::time::Instant::now() + $patience;
        loop {
            if $cond {
                break;
            }
            if ::std::time::Instant::now() > deadline {
                panic!("condition never held within {:?}: {}", $patience, stringify!($cond));
            }
            ::tokio::time::sleep(::std::time::Duration::from_millis(20)).await;
        }
    }};
}
