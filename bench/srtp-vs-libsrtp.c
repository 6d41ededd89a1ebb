/*
 * Packets per second of libsrtp's srtp_protect and srtp_unprotect, the C
 * half of bench/srtp-vs-libsrtp; crates/natter-srtp/examples/srtp_bench.rs
 * is the Rust half and does exactly the same work:
 *
 *   srtp-vs-libsrtp-c PROFILE PAYLOAD_BYTES PACKETS [cpu]
 *
 * Same key and salt bytes, same 12-byte header and payload, packets in
 * batches of 1024 buffers: protect a batch (timed), then unprotect it
 * (timed). Prints "protect_pps unprotect_pps". Timed by the monotonic
 * clock, or with `cpu` by the thread's CPU clock (bench/forward's floor,
 * which compares with CPU time on a loaded machine).
 */
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1024
#define HEADER 12

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static srtp_t session(srtp_profile_t profile, unsigned char *key, srtp_ssrc_type_t direction) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    srtp_crypto_policy_set_from_profile_for_rtp(&policy.rtp, profile);
    srtp_crypto_policy_set_from_profile_for_rtcp(&policy.rtcp, profile);
    policy.ssrc.type = direction;
    policy.key = key;
    policy.window_size = 1024;
    srtp_t s;
    if (srtp_create(&s, &policy) != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create failed\n");
        exit(2);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "cpu") == 0)) {
        fprintf(stderr, "usage: %s PROFILE PAYLOAD_BYTES PACKETS [cpu]\n", argv[0]);
        return 2;
    }
    if (argc == 5) clock_id = CLOCK_THREAD_CPUTIME_ID;
    srtp_profile_t profile;
    if (strcmp(argv[1], "SRTP_AES128_CM_HMAC_SHA1_80") == 0) profile = srtp_profile_aes128_cm_sha1_80;
    else if (strcmp(argv[1], "SRTP_AES128_CM_HMAC_SHA1_32") == 0) profile = srtp_profile_aes128_cm_sha1_32;
    else if (strcmp(argv[1], "SRTP_AEAD_AES_128_GCM") == 0) profile = srtp_profile_aead_aes_128_gcm;
    else if (strcmp(argv[1], "SRTP_AEAD_AES_256_GCM") == 0) profile = srtp_profile_aead_aes_256_gcm;
    else {
        fprintf(stderr, "unknown profile %s\n", argv[1]);
        return 2;
    }
    int payload = atoi(argv[2]);
    long packets = atol(argv[3]);

    unsigned key_len = srtp_profile_get_master_key_length(profile);
    unsigned salt_len = srtp_profile_get_master_salt_length(profile);
    unsigned char key[64];
    for (unsigned i = 0; i < key_len; i++) key[i] = (unsigned char)i;
    for (unsigned i = 0; i < salt_len; i++) key[key_len + i] = (unsigned char)(0xa0 + i);

    srtp_init();
    srtp_t tx = session(profile, key, ssrc_any_outbound);
    srtp_t rx = session(profile, key, ssrc_any_inbound);

    int len = HEADER + payload;
    unsigned char *template = malloc(len);
    const unsigned char header[HEADER] = {0x80, 96, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};
    memcpy(template, header, HEADER);
    for (int i = 0; i < payload; i++) template[HEADER + i] = (unsigned char)i;
    int capacity = len + SRTP_MAX_TRAILER_LEN;
    unsigned char *bufs = malloc((size_t)capacity * BATCH);
    int lens[BATCH];

    double protect_time = 0, unprotect_time = 0;
    unsigned short seq = 0;
    for (long done = 0; done < packets;) {
        int n = packets - done < BATCH ? (int)(packets - done) : BATCH;
        for (int i = 0; i < n; i++) {
            unsigned char *b = bufs + (size_t)i * capacity;
            memcpy(b, template, len);
            b[2] = seq >> 8;
            b[3] = seq & 0xff;
            seq++;
        }
        double start = now();
        for (int i = 0; i < n; i++) {
            lens[i] = len;
            if (srtp_protect(tx, bufs + (size_t)i * capacity, &lens[i]) != srtp_err_status_ok) {
                fprintf(stderr, "protect failed\n");
                return 1;
            }
        }
        protect_time += now() - start;
        start = now();
        for (int i = 0; i < n; i++) {
            if (srtp_unprotect(rx, bufs + (size_t)i * capacity, &lens[i]) != srtp_err_status_ok) {
                fprintf(stderr, "unprotect failed\n");
                return 1;
            }
        }
        unprotect_time += now() - start;
        done += n;
    }
    if (memcmp(bufs + HEADER, template + HEADER, payload) != 0) {
        fprintf(stderr, "round trip changed the payload\n");
        return 1;
    }
    printf("%.0f %.0f\n", packets / protect_time, packets / unprotect_time);
    srtp_dealloc(tx);
    srtp_dealloc(rx);
    srtp_shutdown();
    return 0;
}
