// natter offers to headless Chromium, both DTLS roles, with plain
// addresses: Chromium's host candidates are 127.0.0.1 (the harness's fake
// media UI grants the permission that turns mDNS hiding off). Run by
// scripts/test-peer in a network namespace with only `lo`.

import { offererTests } from './offerer.mjs';

offererTests({ name: 'offerer', mdns: false, natterAddress: '127.0.0.1', browserAddress: '127.0.0.1' });
