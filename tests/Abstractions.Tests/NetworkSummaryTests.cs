using Lockstep.Layers;

namespace Lockstep.Tests;

public class NetworkSummaryTests
{
    [Fact]
    public void Vgg16_ReproducesTheNotesTable()
    {
        var summary = NetworkSummary.Of(NamedNetworks.Vgg16());
        Assert.Equal(138_357_544, summary.Parameters);
        Assert.Equal(13_416, summary.Biases);
        Assert.Equal("fc1", summary.LargestLayer.Name);
        Assert.Equal(7L * 7 * 512 * 4096, summary.LargestLayer.Weights);   // the notes: 102,760,448 in the first FC
        // The rows of the notes' table: INPUT 150K, CONV3-64 3.2M ×2, POOL 800K, ..., FC 4096, 4096, 1000.
        Assert.Equal(224 * 224 * 3, summary.Rows[0].Activations);
        Assert.Equal(224 * 224 * 64, summary.Rows[1].Activations);
        Assert.Equal(0, summary.Rows[2].Activations);   // RELU in place
        // Their sum; the notes' TOTAL line says ~24M, which its own rows do not add up to.
        Assert.Equal(15_237_608, summary.Activations);
        Assert.Equal(15_237_608L * 4, summary.ForwardBytes);
        Assert.Equal(2 * summary.ForwardBytes, summary.ActivationAndGradientBytes);
        Assert.Equal(3 * 138_357_544L * 4, summary.ParameterTrainingBytes);
    }

    [Fact]
    public void Of_ScalesActivationsWithTheBatchAndBytesWithTheDType()
    {
        var one = NetworkSummary.Of(NamedNetworks.LeNet());
        var batch = NetworkSummary.Of(NamedNetworks.LeNet(), batch: 8, DType.Float64);
        Assert.Equal(8 * one.Activations, batch.Activations);
        Assert.Equal(8 * one.Activations * 8, batch.ForwardBytes);
        Assert.Equal(one.Parameters, batch.Parameters);
        // LeNet: 28×28×1 input, 28×28×6, 14×14×6, 10×10×16, 5×5×16, 120, 84, 10.
        Assert.Equal(784 + 4704 + 1176 + 1600 + 400 + 120 + 84 + 10, one.Activations);
        Assert.Equal(one.Activations + 4704 + 1600 + 120 + 84, one.StoredActivations);
        Assert.Equal(156 + 2416 + 48120 + 10164 + 850, one.Parameters);
    }

    [Fact]
    public void Of_ThrowsForEmptyBatch()
    {
        var e = Assert.Throws<ArgumentException>(() => NetworkSummary.Of(NamedNetworks.Cifar(), batch: 0));
        Assert.Contains("batch", e.Message, StringComparison.Ordinal);
    }
}
