using System.Globalization;

namespace Lockstep;

/// <summary>The notes' output-size rule W2 = (W − F + 2P)/S + 1, with its error messages. The one place it is computed.</summary>
public static class OutputSize
{
    /// <summary>
    /// Output length along one axis. <paramref name="axis"/> is the notes' letter (W or H), used in messages;
    /// <paramref name="layer"/> names the layer.
    /// </summary>
    public static int Compute(string layer, char axis, int input, int kernel, int stride, int pad, SizeRule rule)
    {
        int span = input - kernel + 2 * pad;
        string arithmetic = string.Create(CultureInfo.InvariantCulture,
            $"(W - F + 2P)/S + 1 = ({input} - {kernel} + {2 * pad})/{stride} + 1").Replace('W', axis);
        if (span < 0)
        {
            throw new ArgumentException(
                $"{layer}: {arithmetic} < 1: the {kernel}-wide window does not fit the padded input " +
                $"({input} + {2 * pad}) along {axis}; use a smaller kernel or more padding");
        }

        int quotient = span / stride;
        if (span % stride == 0) return quotient + 1;
        switch (rule)
        {
            case SizeRule.Floor:
                return quotient + 1;
            case SizeRule.Ceil:
                // As libtorch's pooling: round up, but the last window must start inside the input or left padding.
                int size = quotient + 2;
                if ((size - 1) * stride >= input + pad) size--;
                return size;
            default:
                double exact = (double)span / stride + 1;
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"{layer}: {arithmetic} = {exact:0.###} is not an integer; choose a stride that divides {span}, " +
                    $"change the padding, or opt in to SizeRule.Floor / SizeRule.Ceil"));
        }
    }
}
