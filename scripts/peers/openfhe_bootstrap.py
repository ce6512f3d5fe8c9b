# OpenFHE CKKS bootstrapping at N = 2^16 beside heman's example (same machine, same run).
import sys, time, math, resource, random
from openfhe import *

log_slots = int(sys.argv[1]) if len(sys.argv) > 1 else 14
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
p = CCParamsCKKSRNS()
p.SetSecretKeyDist(SecretKeyDist.SPARSE_ENCAPSULATED)
p.SetSecurityLevel(SecurityLevel.HEStd_128_classic)
p.SetRingDim(1 << 16)
p.SetScalingTechnique(ScalingTechnique.FLEXIBLEAUTO)
p.SetScalingModSize(59)
p.SetFirstModSize(60)
level_budget = [3, 3]
levels_after = 4
# OpenFHE 1.6 python exposes no GetBootstrapDepth: EvalMod (9 with the sparse-encapsulated secret) + the two level budgets.
depth = levels_after + 9 + sum(level_budget)
p.SetMultiplicativeDepth(depth)
p.SetNumLargeDigits(3)
p.SetBatchSize(1 << log_slots)
cc = GenCryptoContext(p)
for f in [PKESchemeFeature.PKE, PKESchemeFeature.KEYSWITCH, PKESchemeFeature.LEVELEDSHE, PKESchemeFeature.ADVANCEDSHE, PKESchemeFeature.FHE]:
    cc.Enable(f)
print(f"N = {cc.GetRingDimension()}, slots {1 << log_slots}, depth {depth}, threads {__import__('os').environ.get('OMP_NUM_THREADS')}")
t = time.time()
cc.EvalBootstrapSetup(level_budget, [0, 0], 1 << log_slots)
keys = cc.KeyGen()
cc.EvalMultKeyGen(keys.secretKey)
cc.EvalBootstrapKeyGen(keys.secretKey, 1 << log_slots)
print(f"setup + keys: {time.time() - t:.1f} s, peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
x = [math.sin(i * 0.37) for i in range(1 << log_slots)]
pt = cc.MakeCKKSPackedPlaintext(x, 1, depth - 1, None, 1 << log_slots)
pt.SetLength(1 << log_slots)
ct = cc.Encrypt(keys.publicKey, pt)
times = []
for _ in range(runs):
    t = time.time()
    out = cc.EvalBootstrap(ct)
    times.append(time.time() - t)
times.sort()
res = cc.Decrypt(keys.secretKey, out)
res.SetLength(1 << log_slots)
got = res.GetRealPackedValue()
errs = [abs(a - b) for a, b in zip(got, x)]
bits = sorted(-math.log2(max(e, 1e-30)) for e in errs)
print(f"bootstrap: median {times[len(times)//2]:.2f} s of {runs} {[round(t, 2) for t in times]}, levels left {levels_after - out.GetLevel() if False else 'n/a'}, peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
print(f"precision (real): min {bits[0]:.2f} mean {sum(bits)/len(bits):.2f} median {bits[len(bits)//2]:.2f} bits")
