/*
 * A stand-in for libgupnp-igd-1.0.so.4 (UPnP port mapping), for
 * tests/peer/whip-gstreamer.test.mjs only. Debian 12's whip-client
 * (simple-whip-client 0.0~git20230131-1) links libsoup-2.4, while
 * GStreamer's webrtcbin loads libnice, which links libgupnp-igd-1.0,
 * which links libgupnp-1.6 and so libsoup-3.0; libsoup 3 aborts a
 * process that has libsoup 2 loaded ("libsoup2 symbols detected. Using
 * libsoup2 and libsoup3 in the same process is not supported."), so the
 * packaged client dies before its first request. With this library
 * first on LD_LIBRARY_PATH, libnice gets no UPnP client (the thread
 * constructor returns NULL, which libnice checks), libsoup 3 is never
 * loaded, and whip-client runs unchanged. UPnP has no router to talk to
 * in the test's namespace anyway.
 *
 * The four symbols libnice 0.1.21 takes from libgupnp-igd
 * (`nm -D --undefined-only libnice.so.10 | grep gupnp`), with plain C
 * types so that no GLib headers are needed to build it.
 */

/* G_TYPE_OBJECT: G_TYPE_MAKE_FUNDAMENTAL (20). */
unsigned long gupnp_simple_igd_get_type(void) { return 20UL << 2; }

void *gupnp_simple_igd_thread_new(void) { return 0; }

void gupnp_simple_igd_add_port(void *self, const char *protocol, unsigned external_port, const char *local_ip,
                               unsigned short local_port, unsigned lease_duration, const char *description) {}

void gupnp_simple_igd_remove_port_local(void *self, const char *protocol, const char *local_ip,
                                        unsigned short local_port) {}
