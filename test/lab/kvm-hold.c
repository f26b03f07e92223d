// Lab only: holds one empty KVM VM open for L1's lifetime. Creating the
// first VM and destroying the last flip L1's static keys (KVM's preempt
// notifiers, checked in __schedule and finish_task_switch), which Linux
// patches into running kernel text with int3 (text_poke_bp); under QEMU
// 7.2's multi-threaded TCG that patching has left both L1 CPUs looping on
// the patched instruction (test/lab/README.md). With a VM always open the
// keys, and KVM's per-CPU hardware enable, stay set, so pods starting and
// ending patch nothing.
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_CREATE_VM 0xAE01 /* _IO(KVMIO, 0x01), linux/kvm.h */

int main(void) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    perror("kvm-hold: /dev/kvm");
    return 1;
  }
  if (ioctl(kvm, KVM_CREATE_VM, 0) < 0) {
    perror("kvm-hold: KVM_CREATE_VM");
    return 1;
  }
  puts("kvm-hold: holding one VM open");
  fflush(stdout);
  for (;;) pause();
}
