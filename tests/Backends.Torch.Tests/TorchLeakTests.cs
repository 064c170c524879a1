using TorchSharp;
using static Lockstep.Backends.Torch.Tests.TorchTestSupport;

namespace Lockstep.Backends.Torch.Tests;

public class TorchLeakTests
{
    private static TorchBackend B => Backend;

    /// <summary>
    /// TorchSharp counts the tensors created and disposed on each thread; after 100 rounds of every op, forward and
    /// backward, with the results disposed, the count of live tensors on this thread must be where it started.
    /// </summary>
    [Fact]
    public void Ops_LeaveNoLiveTensorsAfter100ForwardBackwardRounds()
    {
        var conv = ConvSpec.Square(3, 1, 1);
        using var x = B.F32(Random(2 * 3 * 8 * 8, 1).Select(v => (float)v).ToArray(), 2, 3, 8, 8);
        using var w = B.F32(Random(4 * 3 * 3 * 3, 2).Select(v => (float)v).ToArray(), 4, 3, 3, 3);
        using var b = B.F32(new float[4], 4);
        using var fcW = B.F32(Random(5 * 64, 3).Select(v => (float)v).ToArray(), 5, 64);
        using var fcB = B.F32(new float[5], 5);
        using var velocity = B.Zeros(w.Shape, DType.Float32);
        var stats = DisposeScopeManager.Statistics;

        Round(); // first use may create lazily cached state
        long before = stats.ThreadTotalLiveCount;
        for (int i = 0; i < 100; i++) Round();
        long after = stats.ThreadTotalLiveCount;

        Assert.True(before == after, $"live tensors on this thread: {before} before, {after} after 100 rounds ({stats})");

        void Round()
        {
            using var y = B.Conv2d(x, w, b, conv);
            using var r = B.Relu(y);
            foreach (var mode in new[] { PoolMode.Max, PoolMode.Average, PoolMode.L2 })
            {
                var poolSpec = PoolSpec.Square(mode, 2);
                using var pool = B.Pool2d(r, poolSpec);
                using var dPool = B.Pool2dBackward(pool.Y, r, pool, poolSpec);
            }
            using var p = B.Pool2d(r, PoolSpec.Square(PoolMode.Max, 2));
            using var scores = B.Linear(p.Y, fcW, fcB);
            using var softmax = B.SoftmaxCrossEntropy(scores, [1, 3]);
            using var svm = B.MulticlassSvm(scores, [0, 4]);
            using var fc = B.LinearBackward(softmax.DScores, p.Y, fcW, needDx: true);
            using var dp = B.Pool2dBackward(fc.Dx!, r, p, PoolSpec.Square(PoolMode.Max, 2));
            using var dr = B.ReluBackward(dp, y);
            using var grads = B.Conv2dBackward(dr, x, w, conv, needDx: true);
            B.SgdStep(w, grads.Dw, velocity, 1e-6, 0.9, 1e-4);
            using var z = B.Zeros(x.Shape, DType.Float32);
            using var up = B.Upload<float>(z.ToArray<float>(), z.Shape);
            B.Synchronize();
        }
    }
}
