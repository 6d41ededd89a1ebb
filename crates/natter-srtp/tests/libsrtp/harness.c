/*
 * A line-oriented driver for libsrtp 2, the reference peer of natter-srtp's
 * interop test (tests/libsrtp_interop.rs).
 *
 *   harness PROFILE KEY_HEX
 *
 * PROFILE is an RFC 5764/7714 name (SRTP_AES128_CM_HMAC_SHA1_80, ...);
 * KEY_HEX is the master key followed by the master salt. The harness makes
 * an outbound and an inbound session keyed alike, then reads commands
 *
 *   protect_rtp HEX | unprotect_rtp HEX | protect_rtcp HEX | unprotect_rtcp HEX
 *
 * one per line on stdin and answers each with "ok HEX" or "err CODE"
 * (a srtp_err_status_t) on stdout.
 */
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PACKET 4096

static int unhex(const char *s, unsigned char *out, int cap) {
    int n = 0;
    while (s[0] && s[1] && s[0] != '\n') {
        unsigned int b;
        if (n >= cap || sscanf(s, "%2x", &b) != 1) return -1;
        out[n++] = (unsigned char)b;
        s += 2;
    }
    return n;
}

static void print_hex(const unsigned char *p, int n) {
    for (int i = 0; i < n; i++) printf("%02x", p[i]);
}

static int profile_by_name(const char *name, srtp_profile_t *out) {
    static const struct { const char *name; srtp_profile_t profile; } table[] = {
        {"SRTP_AES128_CM_HMAC_SHA1_80", srtp_profile_aes128_cm_sha1_80},
        {"SRTP_AES128_CM_HMAC_SHA1_32", srtp_profile_aes128_cm_sha1_32},
        {"SRTP_AEAD_AES_128_GCM", srtp_profile_aead_aes_128_gcm},
        {"SRTP_AEAD_AES_256_GCM", srtp_profile_aead_aes_256_gcm},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) == 0) {
            *out = table[i].profile;
            return 0;
        }
    }
    return -1;
}

static srtp_t session(srtp_profile_t profile, unsigned char *key, srtp_ssrc_type_t direction) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (srtp_crypto_policy_set_from_profile_for_rtp(&policy.rtp, profile) != srtp_err_status_ok ||
        srtp_crypto_policy_set_from_profile_for_rtcp(&policy.rtcp, profile) != srtp_err_status_ok) {
        fprintf(stderr, "profile not supported by this libsrtp\n");
        exit(2);
    }
    policy.ssrc.type = direction;
    policy.key = key;
    policy.window_size = 1024;
    policy.allow_repeat_tx = 0;
    srtp_t s;
    srtp_err_status_t err = srtp_create(&s, &policy);
    if (err != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create failed: %d\n", err);
        exit(2);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PROFILE KEY_HEX\n", argv[0]);
        return 2;
    }
    srtp_profile_t profile;
    if (profile_by_name(argv[1], &profile) != 0) {
        fprintf(stderr, "unknown profile %s\n", argv[1]);
        return 2;
    }
    unsigned char key[64];
    int key_len = unhex(argv[2], key, sizeof key);
    if (key_len != (int)(srtp_profile_get_master_key_length(profile) + srtp_profile_get_master_salt_length(profile))) {
        fprintf(stderr, "key is %d bytes, profile needs %u\n", key_len,
                srtp_profile_get_master_key_length(profile) + srtp_profile_get_master_salt_length(profile));
        return 2;
    }
    if (srtp_init() != srtp_err_status_ok) {
        fprintf(stderr, "srtp_init failed\n");
        return 2;
    }
    srtp_t out = session(profile, key, ssrc_any_outbound);
    srtp_t in = session(profile, key, ssrc_any_inbound);

    static char line[2 * MAX_PACKET + 64];
    static unsigned char packet[MAX_PACKET + SRTP_MAX_TRAILER_LEN];
    while (fgets(line, sizeof line, stdin)) {
        char *space = strchr(line, ' ');
        if (!space) {
            printf("err -1\n");
            fflush(stdout);
            continue;
        }
        *space = 0;
        int len = unhex(space + 1, packet, MAX_PACKET);
        srtp_err_status_t err;
        if (len < 0) {
            err = srtp_err_status_bad_param;
        } else if (strcmp(line, "protect_rtp") == 0) {
            err = srtp_protect(out, packet, &len);
        } else if (strcmp(line, "unprotect_rtp") == 0) {
            err = srtp_unprotect(in, packet, &len);
        } else if (strcmp(line, "protect_rtcp") == 0) {
            err = srtp_protect_rtcp(out, packet, &len);
        } else if (strcmp(line, "unprotect_rtcp") == 0) {
            err = srtp_unprotect_rtcp(in, packet, &len);
        } else {
            err = srtp_err_status_bad_param;
        }
        if (err == srtp_err_status_ok) {
            printf("ok ");
            print_hex(packet, len);
            printf("\n");
        } else {
            printf("err %d\n", err);
        }
        fflush(stdout);
    }
    srtp_dealloc(out);
    srtp_dealloc(in);
    srtp_shutdown();
    return 0;
}
