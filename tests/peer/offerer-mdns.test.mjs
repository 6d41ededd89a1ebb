// natter offers to headless Chromium, both DTLS roles, and Chromium
// answers with `.local` host candidates (RFC 8828) that natter resolves
// with mDNS. Run by scripts/test-peer in the namespace of
// mdns.test.mjs: `lo` and a veth pair, 198.18.0.1/24 (Chromium's default
// route) and 198.18.0.2/24 (natter's host address).
// namespace: veth

import { offererTests } from './offerer.mjs';

offererTests({ name: 'offerer-mdns', mdns: true, natterAddress: '198.18.0.2', browserAddress: '198.18.0.1' });
