# SPDX-License-Identifier: Apache-2.0
# Policy enforcement in eBPF (tests/bpf/test-policy-bpf.c): the veth and
# socket programs against policy_compile() and policy_eval(); root, bpffs,
# cgroup v2 for the socket half. The fallback of the flow log (a BPF queue
# drained on a timer, where ring buffers are missing) runs as its own entry
# on every kernel.
add_executable(test-policy-bpf ${PROJECT_SOURCE_DIR}/tests/bpf/test-policy-bpf.c)
target_compile_options(test-policy-bpf PRIVATE ${SHOAL_SAN_FLAGS})
target_link_options(test-policy-bpf PRIVATE -fsanitize=address,undefined)
target_link_libraries(test-policy-bpf PRIVATE shoal_lb_san shoal_policy_san PkgConfig::CMOCKA)
shoal_bpf_test(bpf/policy test-policy-bpf)
shoal_bpf_test(bpf/policy-queue test-policy-bpf DISABLE "ringbuf")
