namespace Lockstep.Conformance;

/// <summary>One named result of an op, copied to the host.</summary>
public sealed record Result(string Name, Shape Shape, double[] Values, bool Exact = false)
{
    public static Result Of(string name, ITensor tensor, bool exact = false)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return new Result(name, tensor.Shape, tensor.ToDoubles(), exact);
    }
}
